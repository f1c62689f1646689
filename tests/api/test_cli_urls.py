"""``alertscaler url`` (create, list, revoke, keys, rotate-key) against a real service served by uvicorn on 127.0.0.1
in this process (the ``cli`` fixture of test_cli_operating): the URL printed alone on stdout works with a bare POST,
listings cut the signature, revoked and retired URLs are refused, mistakes are clear messages without a
traceback."""

from __future__ import annotations

import json

import httpx

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE
from tests.api.test_cli_operating import cli  # noqa: F401  (the fixture)
from tests.support.cli import CliRunner


async def bare_post(url: str) -> httpx.Response:
    """What curl -X POST URL does: no token, no body."""
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.post(url)


async def test_create_prints_a_url_that_scales_the_group(cli: CliRunner) -> None:  # noqa: F811
    code, out, err = await cli.run("url", "create", "web", "scale_out", "--expires", "2d", "--note", "aodh cpu_high")
    assert code == EXIT_OK, err
    url = out.strip()
    assert url.startswith(f"{cli.url}/api/v1/signal/web/scale_out/") and "&sig=" in url
    assert "anyone holding it can POST" in err and "alertscaler url revoke" in err
    response = await bare_post(url)
    assert response.status_code == 202 and response.json()["decisions"][0]["reason"] == "scaled"

    code, out, _ = await cli.run("url", "list")
    assert code == EXIT_OK and "web/scale_out" in out and "aodh cpu_high" in out and "active" in out
    sig = url.rpartition("sig=")[2]
    assert sig not in out and sig[:4] in out


async def test_revoke_and_rotate_key(cli: CliRunner) -> None:  # noqa: F811
    _, first, _ = await cli.run("url", "create", "web", "scale_out", "--json")
    first_url = json.loads(first)
    _, second, _ = await cli.run("url", "create", "web", "scale_in")
    code, out, _ = await cli.run("url", "revoke", first_url["id"])
    assert code == EXIT_OK and f"revoked {first_url['id']}" in out
    refused = await bare_post(first_url["url"])
    assert refused.status_code == 403 and refused.json()["reason"] == "revoked"

    code, out, _ = await cli.run("url", "rotate-key")
    assert code == EXIT_OK and "stay valid" in out
    assert (await bare_post(second.strip())).status_code == 202  # an older key still verifies
    code, out, _ = await cli.run("url", "rotate-key", "--retire-old")
    assert code == EXIT_OK and "retired" in out and first_url["key_id"] in out
    assert (await bare_post(second.strip())).json()["reason"] == "key_retired"
    code, out, _ = await cli.run("url", "keys")
    assert code == EXIT_OK and first_url["key_id"] in out
    code, out, _ = await cli.run("url", "list", "--json")
    assert {u["state"] for u in json.loads(out)} == {"revoked", "key_retired"}


async def test_mistakes_are_clear_messages(cli: CliRunner) -> None:  # noqa: F811
    code, _, err = await cli.run("url", "create", "nope", "scale_out")
    assert code == EXIT_NO and "no group named 'nope'" in err
    code, _, err = await cli.run("url", "create", "web")
    assert code == EXIT_USAGE and "name a GROUP and its POLICY" in err
    code, _, err = await cli.run("url", "create", "web", "scale_out", "--input", "aodh")
    assert code == EXIT_USAGE and "not both" in err
    code, _, err = await cli.run("url", "create", "web", "scale_out", "--expires", "soon")
    assert code == EXIT_USAGE and "--expires" in err
    code, _, err = await cli.run("url", "create", "web", "scale_out", "--expires", "400d")
    assert code == EXIT_NO and "at most" in err
    code, _, err = await cli.run("url", "revoke", "ffffffffffffffff")
    assert code == EXIT_NO and "no signed URL" in err
