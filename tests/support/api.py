"""A test client for the token-authenticated JSON API."""

import json

from django.test import Client


class ApiClient:
    def __init__(self, token: str | None):
        self.client = Client()
        self.token = token

    def post(self, path: str, data=None, *, raw: bytes | str | None = None, token=...):
        token = self.token if token is ... else token
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = raw if raw is not None else json.dumps(data)
        return self.client.post(path, body, content_type="application/json", headers=headers)

    def get(self, path: str, *, token=...):
        token = self.token if token is ... else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(path, headers=headers)
