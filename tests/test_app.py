"""Start-up rules: production refuses development secrets; the app refuses an unmigrated database."""

import pytest
from pydantic import ValidationError

from api.app import create_app
from api.db import UnmigratedDatabase
from api.settings import Settings


def test_production_refuses_the_development_secret():
    with pytest.raises(ValidationError, match="JIANSHEN_SECRET_KEY"):
        Settings(env="production")
    with pytest.raises(ValidationError):
        Settings(env="production", secret_key="short")
    production = dict(esign_kek="k" * 40, certificate_check_secret="c" * 40, public_base_url="https://js.example")
    assert Settings(env="production", secret_key="x" * 40, **production).graphiql_enabled is False


def test_production_refuses_the_development_seal_secrets():
    with pytest.raises(ValidationError, match="JIANSHEN_ESIGN_KEK"):
        Settings(env="production", secret_key="x" * 40, certificate_check_secret="c" * 40)
    with pytest.raises(ValidationError, match="JIANSHEN_CERTIFICATE_CHECK_SECRET"):
        Settings(env="production", secret_key="x" * 40, esign_kek="k" * 40)


async def test_unmigrated_database_is_refused(tmp_path):
    app = create_app(Settings(database_url=f"sqlite://{tmp_path}/empty.sqlite3"))
    with pytest.raises(UnmigratedDatabase, match="python -m api migrate"):
        async with app.router.lifespan_context(app):
            pass


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert ready.headers["x-request-id"]


@pytest.mark.parametrize("fails", [False, True])
async def test_a_served_process_freezes_what_it_built_once_warm(monkeypatch, fails):
    """After the assistant's warm-up (served processes only), the heap built so far leaves the cyclic collector's
    reach: a full collection no longer walks the modules, schema and dictionaries (issue #13). Also when the warm-up
    fails (the first question builds the assistant then)."""
    import gc

    import api.app as app_module
    import api.services.assistant as assistant

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))

    async def warm_up():
        if fails:
            raise RuntimeError("no catalogue")

    monkeypatch.setattr(assistant, "warm_up", warm_up)
    await app_module._warm_up_assistant()
    assert frozen == [True]
