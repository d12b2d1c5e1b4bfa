"""`opsbot console`: the bot without Slack, through an emulated workspace (``shell.py``), and the emulator itself."""
