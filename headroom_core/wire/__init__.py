"""Wire formats: typed views over Anthropic Messages, OpenAI Chat and OpenAI Responses bodies."""

from .common import Endpoint, ProviderRequest, StaleLocationError, ToolOutput
from .request import parse_request

__all__ = ["Endpoint", "ProviderRequest", "StaleLocationError", "ToolOutput", "parse_request"]
