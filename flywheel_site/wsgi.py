import os

from django.core.wsgi import get_wsgi_application

from flywheel_site.env import env_file_load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
# Variables the server was started with win; the env file fills in the rest.
env_file_load()
application = get_wsgi_application()
