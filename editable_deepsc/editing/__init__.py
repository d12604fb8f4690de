"""The semantic editing module: instruction-driven updates of W+ latents (see ``docs/editing.md``).

>>> from editable_deepsc.editing import Editor, edit_config
>>> from editable_deepsc.editing.builtin import build_editor   # the built-in model set
"""

from editable_deepsc.editing.config import PRESETS, EditConfig, edit_config
from editable_deepsc.editing.directions import AttributeDirections, load_directions
from editable_deepsc.editing.editor import EditResult, Editor, edit
from editable_deepsc.editing.support import SupportTable, load_support

__all__ = [
    "PRESETS",
    "AttributeDirections",
    "EditConfig",
    "EditResult",
    "Editor",
    "SupportTable",
    "edit",
    "edit_config",
    "load_directions",
    "load_support",
]
