"""A client that talks as Dify does to an external knowledge API, written from Dify's spec, not from our code.

What Dify sends (api/services/external_knowledge_service.py in langgenius/dify):
- registering the API: POST {endpoint}/retrieval with only ``Authorization: Bearer {api_key}``, no body, no
  Content-Type; Dify refuses the endpoint on 502, 404 or 403, and accepts any other status;
- retrieving: POST {endpoint}/retrieval, ``Content-Type: application/json`` and the Bearer header, the body a JSON
  string (``data=json.dumps(...)``: ASCII, Chinese as \\u escapes), ``metadata_condition`` only when not None;
  Dify uses the answer only on 200, as ``response.json().get("records", [])``, and takes [] otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class DifyClient:
    def __init__(self, http: httpx.Client, endpoint: str, api_key: str) -> None:
        self.http, self.endpoint, self.api_key = http, endpoint.rstrip("/"), api_key

    def check_endpoint(self) -> str | None:
        """Dify's registration check: None when accepted, else the message Dify shows."""
        resp = self.http.post(f"{self.endpoint}/retrieval", headers={"Authorization": f"Bearer {self.api_key}"})
        return {502: "Bad Gateway", 404: "Not Found", 403: "Forbidden: Authorization failed"}.get(resp.status_code)

    def request(self, knowledge_id: str, query: str, top_k: int, score_threshold: float,
                metadata_condition: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        params: dict[str, Any] = {"retrieval_setting": {"top_k": top_k, "score_threshold": score_threshold},
                                  "query": query, "knowledge_id": knowledge_id}
        if metadata_condition is not None:
            params["metadata_condition"] = metadata_condition
        sent = headers if headers is not None else {"Content-Type": "application/json",
                                                    "Authorization": f"Bearer {self.api_key}"}
        # requests' data=<str> is httpx's content=<str>: the body exactly as json.dumps wrote it
        return self.http.post(f"{self.endpoint}/retrieval", headers=sent, content=json.dumps(params))

    def records(self, knowledge_id: str, query: str, top_k: int = 5, score_threshold: float = 0.0,
                metadata_condition: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """What Dify's retrieval node gets."""
        resp = self.request(knowledge_id, query, top_k, score_threshold, metadata_condition)
        if resp.status_code == 200:
            return list(resp.json().get("records", []))
        return []
