"""Integrations of governor with web frameworks.

- `governor.integrations.fastapi`: `GovernMiddleware` (the authenticated caller becomes the
  governance context of every request), `create_approval_router` (the `/govern` approval and
  execution API for authenticated approvers) and `install_exception_handlers` (policy outcomes
  of governed endpoints as 202/403/429 JSON answers).

Each integration is its own module, imported on demand: importing `governor.integrations` imports
no framework.
"""

__all__: list[str] = []
