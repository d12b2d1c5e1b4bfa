"""The Home tab through the Web API: ``views.publish`` (https://docs.slack.dev/reference/methods/views.publish).

Slack keeps the last view published for each person and shows it whenever they open the app's Home; publishing
needs no scope, only ``features.app_home.home_tab_enabled`` in the manifest (else Slack answers ``not_enabled``).
"""

from __future__ import annotations

from slack_sdk import WebClient

from bot.adapters.slack.web_api import slack_call
from bot.domain.shared.ports import Message
from bot.render import Renderer


class SlackHomeSurface:
    """``HomeSurface``: renders a Home view (``Renderer.render_view``: at most 100 blocks) and publishes it."""

    def __init__(self, client: WebClient, renderer: Renderer) -> None:
        self._client = client
        self._renderer = renderer

    @slack_call("publish the Home tab")
    def publish(self, user: str, view: Message) -> None:
        self._client.views_publish(user_id=user, view=self._renderer.render_view(view))
