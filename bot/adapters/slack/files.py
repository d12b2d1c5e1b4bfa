"""``FileUploads`` on Slack's Web API: ``files_upload_v2`` (files.getUploadURLExternal, a POST of the bytes to the
returned URL, files.completeUploadExternal sharing it in the channel). Needs the ``files:write`` scope.

API reference: https://api.slack.com/messaging/files#upload (files.upload is retired; this is its successor).
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.adapters.slack.refusals import NETWORK_ERRORS, typed_error
from bot.domain.shared.errors import Unavailable


class SlackFiles:
    def __init__(self, client: WebClient) -> None:
        self._client = client

    def upload(self, *, channel: str, filename: str, content: bytes, title: str, comment: str) -> str:
        try:
            answer = self._client.files_upload_v2(
                channel=channel, filename=filename, content=content, title=title, initial_comment=comment
            )
        except SlackRequestError as exc:  # the upload to the returned URL failed
            raise Unavailable(f"Slack did not take the image ({str(exc)[:120]})") from None
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            raise typed_error(exc, "share the chart", channel) from None
        file = answer.get("file") or {}
        return str(file.get("id", ""))
