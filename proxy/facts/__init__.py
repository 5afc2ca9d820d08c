"""Facts about the caller: who they are, their settings, and the visible sets rules decide with."""
