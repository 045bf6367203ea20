from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from flywheel_site import redis as fw_redis


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure means "down"; report its type only
        return False, type(error).__name__
    return True, "ok"


@require_GET
def healthz(request):
    db_ok, db_detail = _database_ok()
    redis_ok, redis_detail = fw_redis.ping()
    checks = {
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not down else "degraded", "down": down, "checks": checks}
    return JsonResponse(body, status=200 if db_ok else 503)
