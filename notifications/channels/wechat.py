"""WeChat subscribe messages (订阅消息) through the one WeChat client of ``miniapp/`` (DOMAIN.md §10–11).

The client raises typed errors; here they become the four outcomes the dispatcher acts on. 43101 means the person's
one-time consent is gone (or was never given): fall back to SMS. 40003 (bad openid) cannot be fixed by retrying this
channel either, so it falls back too. 47003 (bad data) is our template's fault: permanent, so staff see it.
"""

from __future__ import annotations

import asyncio

from miniapp.errors import (
    InvalidMessageData,
    InvalidOpenid,
    NoSubscribeConsent,
    RateLimited,
    WeChatError,
)
from notifications.channels.base import IdempotencyKey, Outcome
from notifications.templates import WechatMessage


class WechatSubscribeChannel:
    name = "wechat"

    def __init__(self, client, *, timeout: float = 10.0) -> None:
        self.client = client  # miniapp.client.MiniProgram
        self.timeout = timeout

    async def send(self, address: str, message: WechatMessage, key: IdempotencyKey) -> Outcome:
        data = {field: entry["value"] for field, entry in message.data.items()}
        try:
            await asyncio.wait_for(
                self.client.send_subscribe_message(address, message.template_id, data, page=message.page),
                self.timeout,
            )
        except NoSubscribeConsent as exc:
            return Outcome.fallback(f"用户未授权订阅消息或授权已用完 (43101)：{exc.errmsg or ''}".rstrip("："), "43101")
        except InvalidOpenid as exc:
            return Outcome.fallback(f"openid 无效 (40003)：{exc.errmsg or ''}".rstrip("："), "40003")
        except InvalidMessageData as exc:
            return Outcome.permanent(f"订阅消息内容不符合模板要求 (47003)：{exc.errmsg or ''}".rstrip("："), "47003")
        except RateLimited as exc:
            return Outcome.retry(f"微信接口调用频率受限 ({exc.errcode})", str(exc.errcode), after=60)
        except asyncio.TimeoutError:
            return Outcome.retry("微信接口超时", "timeout")
        except WeChatError as exc:
            code = str(exc.errcode) if exc.errcode is not None else "wechat"
            return Outcome.retry(f"微信接口暂不可用 ({code})：{exc.errmsg or exc}", code)
        # WeChat answers no message id for subscribe messages; the key names the send in our records.
        return Outcome.delivered(key.value)
