"""Presenter: the Explorer full screen for a projector; arrow keys step; ?run=&step= links."""

from ui.presenter import presenter
from ui.resources import get_store
from ui.selection import current_run

presenter(get_store(), current_run())
