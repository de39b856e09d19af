"""The labelled questions asked through the public API (issue #11, "Done when"): each question is sent with the
mini-program's SendMessage operation, in a conversation of its own (a new applicant of the same organisation, after its
``before`` message when it has one; rating questions are the first applicant's, who was served), and the answer is judged from what the mini-program receives: the item the
conversation is about, the GUIDE card's section, the kinds of the cards, and, for ambiguous questions, the items its
quick replies name. (tests/api/test_assistant.py asks the same sets in-process and also checks the intent.)

SQLite only: the in-process run covers both databases, and the assistant reads the same rows through either.
"""

from __future__ import annotations

import datetime as dt
import itertools


from api.domain.accounts import Role
from api.models import AgentAuthorization
from api.services.guides import guide_index
from tests.api.test_assistant import _questions, matters  # noqa: F401  (the world the labels were written for)

FILES = ("conversation_questions.toml", "conversation_questions_heldout.toml")
_serial = itertools.count(1)


async def _new_applicant(world) -> str:
    """Another 经办人 of the applicant's organisation, authorised like the first: a conversation of its own."""
    n = next(_serial)
    key, phone = f"asker{n}", f"1370000{n:04d}"
    first = world.users["applicant"]
    verified = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    organization = await first.organization
    await world.add_user(key, f"提问人{n}", Role.APPLICANT, organization=organization, phone=phone,
                         phone_verified_at=verified)
    await AgentAuthorization.create(organization=organization, phone=phone, agent_name=f"提问人{n}",
                                    granted_at=verified)
    return key


async def _send(gql, user: str, text: str) -> dict:
    variables = {"input": {"text": text, "clientMessageId": f"{user}-{next(_serial)}"}}
    payload = (await gql.op("SendMessage", variables, as_user=user))["sendMessage"]
    assert payload["errors"] == [], payload["errors"]
    return payload["reply"]


async def test_labelled_questions_through_send_message(gql, world, matters, sqlite_only):  # noqa: F811
    by_name = {name: code for code, name in (await guide_index()).names.items()}
    results = {}
    for name in FILES:
        wrong = []
        questions = _questions(name)
        for q in questions:
            # A rating names the case its asker was served in: rating questions are the first applicant's (only they
            # are asked in that conversation); every other question gets a new applicant's fresh conversation.
            user = "applicant" if q["intent"] == "rating" else await _new_applicant(world)
            if q.get("before"):
                await _send(gql, user, q["before"])
            reply = await _send(gql, user, q["text"])
            kinds = sorted({c["__typename"].removesuffix("Card").upper() for c in reply["cards"]})
            got = {
                "item": reply["itemCode"],
                "section": next((c["section"] for c in reply["cards"] if c["__typename"] == "GuideCard"), None),
                "cards": kinds,
                "candidates": sorted(by_name.get(r["label"], "?") for r in reply["quickReplies"])
                if "candidates" in q else None,
            }
            want = {
                "item": q.get("item"), "section": q.get("section"), "cards": sorted(q["cards"]),
                "candidates": sorted(q["candidates"]) if "candidates" in q else None,
            }
            if got != want:
                wrong.append(f"{q['text']!r}: want {want} got {got}")
        results[name] = (1 - len(wrong) / len(questions), len(questions), wrong)
    for name, (accuracy, count, wrong) in results.items():
        print(f"\nthrough sendMessage, {name}: {accuracy:.1%} of {count} questions")
        for line in wrong:
            print("  wrong:", line)
    for name, (accuracy, count, wrong) in results.items():
        assert accuracy >= 0.95, (name, wrong)
