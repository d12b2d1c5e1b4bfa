"""The emulator's side of Slack's file uploads (``files_upload_v2``), answered the way Slack answers them.

1. ``files.getUploadURLExternal`` (``filename``, ``length``) → ``upload_url`` and ``file_id``;
2. a POST of the bytes to ``upload_url`` (Slack answers 200 ``OK - <length>``);
3. ``files.completeUploadExternal`` (``files``: JSON ``[{"id", "title"}]``, ``channel_id``, ``initial_comment``)
   → ``files``; with a channel the file is shared there, as a message carrying it.

Uploaded bytes are written under ``files_dir`` (a temporary folder): the console prints each shared file's path.
Reference: https://api.slack.com/messaging/files#upload and the methods' pages (errors: ``invalid_arguments``,
``channel_not_found``, ``file_not_found``).
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from bot.console.slack_methods import WebApiMethods
from bot.console.slack_model import Posted

MAX_FILE_BYTES = 1024 * 1024 * 1024  # Slack takes files up to 1 GB


class _UploadHost(Protocol):
    """What the upload-URL step needs of the emulator it is part of (its HTTP address)."""

    files: dict[str, dict[str, Any]]

    def _upload_url(self, file_id: str) -> str: ...


class FileMethods(WebApiMethods):
    """The file-upload methods, on top of the Web API methods whose channels and messages they share."""

    _lock: threading.Condition

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}  # file id → {"name", "length", "data", "path", "title"}
        self.files_dir = Path(tempfile.mkdtemp(prefix="opsbot-slack-files-"))

    def _m_files_getUploadURLExternal(self: _UploadHost, args: dict[str, Any]) -> dict[str, Any]:
        name, length = str(args.get("filename") or ""), str(args.get("length") or "")
        if not name or not length.isdigit() or not 0 < int(length) <= MAX_FILE_BYTES:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{len(self.files) + 1:09d}"
        self.files[file_id] = {"name": name, "length": int(length), "data": None, "path": None, "title": name}
        return {"ok": True, "upload_url": self._upload_url(file_id), "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The POST to an upload URL: (HTTP status, body) as files.slack.com answers it."""
        with self._lock:
            file = self.files.get(file_id)
            if file is None:
                return 404, "Not Found"
            path = self.files_dir / f"{file_id}-{Path(file['name']).name}"
            path.write_bytes(data)
            file.update(data=data, path=str(path))
            return 200, f"OK - {len(data)}"

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(wanted, list) or not wanted:
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for item in wanted:
            file = self.files.get(str(item.get("id")))
            if file is None or file["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            file["title"] = item.get("title") or file["name"]
            done.append({"id": item["id"], "name": file["name"], "title": file["title"], "size": len(file["data"])})
        channel_id = args.get("channel_id")
        if channel_id:
            channel = self._channel_for(str(channel_id))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            shared = [{**d, "path": self.files[d["id"]]["path"]} for d in done]
            self._store(
                Posted(
                    channel.id,
                    self._ts(),
                    str(args.get("initial_comment") or ""),
                    [],
                    thread_ts=args.get("thread_ts"),
                    files=shared,
                )
            )
        return {"ok": True, "files": done}
