"""`relaxml doctor`: one line per check of a Label Studio and backend setup, each failure
with its fix (docs/troubleshooting.md).

- `report.py`: the lines (`ok`, `warn`, `FAIL`, `skip`), printed as they come, redacted, and
  the summary;
- `studio.py`: Label Studio's side: reachable, the key and its kind, legacy tokens, the
  project and its label config, one task's media;
- `backend.py`: the backend from here (`/health`, `/setup`) and as Label Studio sees it (the
  ML backend record, its address, the event webhook, the model version, Basic Auth);
- `command.py`: the click command.
"""
