"""The Search page's parts: the opening words (landing.py) and the live panel of the chosen run
(live.py); page.py lays them out beside the search form (ui.search_form).

May import: core, and ui's shared helpers (ui.*); never another page's package, never views.
"""
