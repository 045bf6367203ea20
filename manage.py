#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
    from django.core.management import execute_from_command_line

    from flywheel_site.env import env_file_load

    # The local services and secret `make run` set up, for commands typed in any shell.
    env_file_load()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
