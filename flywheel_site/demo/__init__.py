"""The demo behind `make run` and `manage.py load_demo`, and the traffic simulator behind
`manage.py simulate_traffic`: code production never runs (but for the one Redis read behind
the "demo still loading" banner, `progress`), kept out of the apps.

`traffic` generates the demo's events (texts from `content` and `data/`, edits from
`edits`), `accounts` makes its users and pins its policy, `loop` simulates six weeks of the
rest of the loop through the real services, `cycles` trains and gates the versions they
froze (in the training worker under `make run`: `jobs`), `tinylm` builds the tiny local base
model the demo (and the test suite) trains, `load` is what `load_demo` does, `simulate` is
what `simulate_traffic` does. The apps never import it (an import-linter contract).
"""
