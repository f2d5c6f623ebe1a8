"""The screens' room of the local engine: the static pages, their runtime configuration and the
local sign-in endpoints (site.py, oauth.py), and `make link` (link.py)."""
