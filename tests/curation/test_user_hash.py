"""User ids are stored as HMAC-SHA256 under FLYWHEEL_USER_HASH_KEY (`ingest_rows.user_hash`).
The function keeps a keyed HMAC state and copies it per id (hmac.digest released the GIL on
every call: bench/RESULTS.md, "fourth round"); the stored hashes must stay those of RFC 2104
HMAC-SHA256, and a changed key must change them."""

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from curation.ingest_rows import user_hash


def _reference(key: str, user_id: str) -> str:
    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@given(user_id=st.text(min_size=1, max_size=600).filter(lambda s: "\x00" not in s))
def test_user_hash_is_hmac_sha256_of_the_id(user_id):
    from django.conf import settings

    assert user_hash(user_id) == _reference(settings.FLYWHEEL_USER_HASH_KEY, user_id)


def test_no_user_id_has_no_hash():
    assert user_hash(None) == ""
    assert user_hash("") == ""


def test_a_changed_key_changes_the_hash(settings):
    before = user_hash("alice@example.com")
    settings.FLYWHEEL_USER_HASH_KEY = "another key, long enough to be a real one: 0123456789"
    after = user_hash("alice@example.com")
    assert after != before
    assert after == _reference(settings.FLYWHEEL_USER_HASH_KEY, "alice@example.com")
