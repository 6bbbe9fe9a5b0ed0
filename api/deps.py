"""Shared dependencies as ``Annotated`` aliases (settings, the search worker, the job runner)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.jobs import JobRunner
from api.search_worker import SearchWorker
from kb.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _search(request: Request) -> SearchWorker:
    return request.app.state.search  # type: ignore[no-any-return]


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
SearchDep = Annotated[SearchWorker, Depends(_search)]
JobsDep = Annotated[JobRunner, Depends(_jobs)]
