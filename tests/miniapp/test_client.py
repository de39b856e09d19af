"""The WeChat client (miniapp/) against the fake WeChat server: formats, error codes, the shared access token."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from api.settings import Settings
from miniapp import (
    InvalidCode,
    InvalidMessageData,
    InvalidOpenid,
    MiniProgram,
    NoSubscribeConsent,
    NotConfigured,
    RateLimited,
    RedisTokenCache,
    RiskyUser,
    Suggest,
    WeChatConfig,
    WeChatUnavailable,
)
from tests.fakes.wechat import LOGIN, PHONE, REVIEW_MARKER, RISKY_MARKER, STABLE_TOKEN, SUBSCRIBE_SEND, FakeWeChat
from tests.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def client_for(fake: FakeWeChat, clock: Clock | None = None, **kwargs) -> MiniProgram:
    config = WeChatConfig(app_id=fake.app_id, app_secret=fake.app_secret, api_base_url=fake.url, timeout=5)
    return MiniProgram(config, clock=clock or Clock(), **kwargs)


async def test_code_to_session_and_single_use_codes(fake_wechat):
    wechat = client_for(fake_wechat)
    code = fake_wechat.issue_login_code("o-alice", unionid="u-alice")
    key = fake_wechat.session_key_of(code)
    session = await wechat.code_to_session(code)
    assert (session.openid, session.unionid, session.session_key) == ("o-alice", "u-alice", key)
    assert key not in repr(session)  # never in a log line
    with pytest.raises(InvalidCode) as reused:
        await wechat.code_to_session(code)
    assert reused.value.errcode == 40029 and "无效" in reused.value.message
    with pytest.raises(InvalidCode):
        await wechat.code_to_session("never-issued")
    assert fake_wechat.calls[LOGIN] == 3
    query = fake_wechat.requests[0][1]
    assert query["appid"] == fake_wechat.app_id and query["grant_type"] == "authorization_code"
    assert "access_token" not in query  # code2Session needs none


@pytest.mark.parametrize(
    ("errcode", "error"), [(45011, RateLimited), (40226, RiskyUser), (-1, WeChatUnavailable)]
)
async def test_login_errors_are_typed(fake_wechat, errcode, error):
    wechat = client_for(fake_wechat)
    fake_wechat.fail_next(LOGIN, errcode)
    with pytest.raises(error) as raised:
        await wechat.code_to_session(fake_wechat.issue_login_code())
    assert raised.value.errcode == errcode and raised.value.message


async def test_unreachable_wechat_is_unavailable_not_a_crash():
    config = WeChatConfig(app_id="wx1", app_secret="s", api_base_url=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(WeChatUnavailable):
        await MiniProgram(config).code_to_session("any")


async def test_phone_number_single_use_and_five_minutes(fake_wechat):
    wechat = client_for(fake_wechat)
    code = fake_wechat.issue_phone_code("13812341234")
    info = await wechat.phone_number(code)
    assert (info.pure_phone, info.country_code) == ("13812341234", "86")
    with pytest.raises(InvalidCode):
        await wechat.phone_number(code)
    late = fake_wechat.issue_phone_code("13812341234")
    fake_wechat.advance(301)
    with pytest.raises(InvalidCode):
        await wechat.phone_number(late)
    body = fake_wechat.requests[-1][2]
    assert body == {"code": late}
    assert fake_wechat.calls[STABLE_TOKEN] == 1  # one token for the three calls


async def test_token_is_refreshed_before_it_expires(fake_wechat):
    clock = Clock()
    wechat = client_for(fake_wechat, clock)
    first = await wechat.access_token()
    assert await wechat.access_token() == first and fake_wechat.calls[STABLE_TOKEN] == 1
    clock.now += 7200 - 299  # inside the 300 s margin: ask again (normal mode, does not invalidate others)
    fake_wechat.advance(7200)  # WeChat's token has died meanwhile, so it issues a new one
    second = await wechat.access_token()
    assert second != first and fake_wechat.calls[STABLE_TOKEN] == 2
    assert fake_wechat.requests[-1][2]["force_refresh"] is False


async def test_40001_refreshes_once_and_retries(fake_wechat):
    wechat = client_for(fake_wechat)
    await wechat.phone_number(fake_wechat.issue_phone_code("13812341234"))
    old = fake_wechat.current_token
    fake_wechat.expire_tokens()  # e.g. refreshed by force elsewhere
    info = await wechat.phone_number(fake_wechat.issue_phone_code("13912341234"))
    assert info.pure_phone == "13912341234"
    assert fake_wechat.calls[STABLE_TOKEN] == 2 and fake_wechat.calls[PHONE] == 3
    assert fake_wechat.requests[-2][0] == STABLE_TOKEN and fake_wechat.requests[-2][2]["force_refresh"] is True
    assert (await wechat.token_cache.get()).token == fake_wechat.current_token != old


async def test_a_token_refused_twice_is_an_error_not_a_loop(fake_wechat):
    wechat = client_for(fake_wechat)
    fake_wechat.fail_next(PHONE, 40001, times=2)
    with pytest.raises(WeChatUnavailable):
        await wechat.phone_number(fake_wechat.issue_phone_code("13812341234"))
    assert fake_wechat.calls[PHONE] == 2


async def test_token_is_shared_through_redis_and_refreshed_once(fake_wechat, redis_server):
    clients = [Redis.from_url(redis_server.url) for _ in range(2)]
    try:
        await clients[0].flushdb()
        # As the app builds it (api/app.py): from the settings, with the process's Redis client.
        settings = Settings(**fake_wechat.settings_overrides())
        instances = [MiniProgram.from_settings(settings, redis=redis) for redis in clients]
        assert all(isinstance(i.token_cache, RedisTokenCache) for i in instances)
        tokens = await asyncio.gather(*(instances[n % 2].access_token() for n in range(12)))
        assert len(set(tokens)) == 1
        assert fake_wechat.calls[STABLE_TOKEN] == 1  # one refresh at a time, the others read the shared cache
        # After a 40001 seen by one instance, the other one uses the refreshed token without refreshing again.
        fake_wechat.expire_tokens()
        await instances[0].phone_number(fake_wechat.issue_phone_code("13812341234"))
        await instances[1].phone_number(fake_wechat.issue_phone_code("13812341235"))
        assert fake_wechat.calls[STABLE_TOKEN] == 2
    finally:
        for redis in clients:
            await redis.aclose()


async def test_content_check_outcomes(fake_wechat):
    wechat = client_for(fake_wechat)
    fake_wechat.add_openid("o-bob")
    assert (await wechat.check_text("施工噪音扰民", openid="o-bob")).suggest is Suggest.PASS
    assert (await wechat.check_text(f"投诉{REVIEW_MARKER}", openid="o-bob")).suggest is Suggest.REVIEW
    risky = await wechat.check_text(f"投诉{RISKY_MARKER}", openid="o-bob")
    assert risky.suggest is Suggest.RISKY and risky.label != 100 and risky.trace_id
    assert fake_wechat.requests[-1][2] == {
        "version": 2, "openid": "o-bob", "scene": 2, "content": f"投诉{RISKY_MARKER}"
    }
    with pytest.raises(ValueError):
        await wechat.check_text("字" * 2501, openid="o-bob")


async def test_subscribe_send(fake_wechat):
    wechat = client_for(fake_wechat)
    fake_wechat.add_openid("o-carol")
    data = {"thing1": "建设工程规划许可证核发", "phrase2": "已办结"}
    with pytest.raises(NoSubscribeConsent):
        await wechat.send_subscribe_message("o-carol", "TPL-1", data)
    fake_wechat.grant_consent("o-carol", "TPL-1")
    await wechat.send_subscribe_message("o-carol", "TPL-1", data, page="pages/case/index?id=1")
    assert [(m.openid, m.template_id, m.data, m.page) for m in fake_wechat.sent] == [
        ("o-carol", "TPL-1", data, "pages/case/index?id=1")
    ]
    with pytest.raises(NoSubscribeConsent):  # the one consent is spent
        await wechat.send_subscribe_message("o-carol", "TPL-1", data)
    fake_wechat.grant_consent("o-carol", "TPL-1")
    with pytest.raises(InvalidMessageData):
        await wechat.send_subscribe_message("o-carol", "TPL-1", {"thing1": "字" * 21})
    with pytest.raises(InvalidOpenid):
        await wechat.send_subscribe_message("o-unknown", "TPL-1", data)
    assert fake_wechat.calls[SUBSCRIBE_SEND] == 5


async def test_console_mode_development_login_only_in_development():
    dev = MiniProgram(WeChatConfig())
    assert dev.console
    assert (await dev.code_to_session("dev:alice")).openid == "dev_alice"
    assert (await dev.phone_number("dev:13812341234")).pure_phone == "13812341234"
    assert (await dev.check_text("任何内容", openid="dev_alice")).suggest is Suggest.PASS
    with pytest.raises(InvalidCode):
        await dev.code_to_session("a-real-looking-code")
    production = MiniProgram(WeChatConfig(production=True))
    with pytest.raises(NotConfigured):
        await production.code_to_session("dev:alice")


async def test_redis_down_is_unavailable_not_a_crash(fake_wechat):
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        wechat = client_for(fake_wechat, token_cache=RedisTokenCache(redis, fake_wechat.app_id))
        with pytest.raises(WeChatUnavailable):
            await wechat.phone_number(fake_wechat.issue_phone_code("13812341234"))
    finally:
        await redis.aclose()
