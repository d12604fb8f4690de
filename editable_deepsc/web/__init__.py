"""The interactive web demo (``edsc serve``): a Starlette app with its own static page.

:func:`create_app` builds the app around an :class:`~editable_deepsc.system.EditableDeepSC`
(tests inject a tiny toy system); :func:`serve` runs it with uvicorn.
"""

from editable_deepsc.web.app import create_app
from editable_deepsc.web.server import serve

__all__ = ["create_app", "serve"]
