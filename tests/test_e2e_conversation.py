"""End to end: the real PTB Application, polling (or webhook) against the fake Bot API."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from bot.config import Settings
from bot.engine import buttons
from bot.knowledge.base import KnowledgeBase
from bot.knowledge.classifier import ObjectionClassifier, normalise
from bot.knowledge.linear import LinearTextModel
from bot.runtime import BotRuntime, open_coach
from tests.conftest import FakeClock
from tests.e2e import Conversation, texts
from tests.fakebot import FakeBotApi

USER = 501


def assert_valid(messages: list[dict[str, Any]]) -> None:
    """What Telegram would insist on: HTML mode, limits, at most 6 buttons."""
    for message in messages:
        assert message["parse_mode"] == "HTML"
        assert 0 < len(message["text"]) <= 4096
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        cells = [b for row in keyboard for b in row]
        assert len(cells) <= 6, [b["text"] for b in cells]
        for cell in cells:
            assert len(cell["callback_data"].encode()) <= 64
            assert buttons.unpack(cell["callback_data"]) is not None


async def test_start_greets_and_asks_the_first_question(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        assert api.calls_of("setMyCommands"), "the command menu is set at start-up"
        sent = await chat.say(USER, "/start", first_name="Ann")
    assert_valid(sent)
    greeting = texts(sent)
    assert "Ann" in greeting
    assert "automated" in greeting
    assert "passwords" in greeting and "money" in greeting and "bank details" in greeting
    assert chat.labels(USER) == [
        "Unsure about an invite",
        "Going, want to prepare",
        "Just exploring",
    ]


@pytest.mark.parametrize(
    ("decision", "expect"),
    [
        ("I'll go", "When is the interview?"),
        ("Still unsure", "Whatever the outcome"),
        ("I'll pass", "<pre>"),
    ],
)
async def test_walk_to_each_decision(
    api: FakeBotApi, running_bot: Any, decision: str, expect: str
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.to_menu(USER)
        assert "Something else…" in chat.labels(USER)
        sent = await chat.tap(USER, "nervous")  # third tap: the first argument
        assert "Source:" in texts(sent)
        sent = await chat.tap(USER, "Another reason")
        assert "Source:" in texts(sent)
        await chat.tap(USER, "That helps")
        sent = await chat.tap(USER, decision)
    assert_valid(sent)
    assert expect in texts(sent)
    answered = api.calls_of("answerCallbackQuery")
    assert len(answered) == 6 and all(c.ok for c in answered), "every press is answered"


async def test_every_objection_in_at_most_four_taps(
    api: FakeBotApi, running_bot: Any, kb: Any
) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        typed_only = ("other", "unpaid_task")
        for objection in [o for o in kb.objections.values() if o.id not in typed_only]:
            await chat.to_menu(USER, "Just exploring", "Unsure")
            taps = 2
            if objection.label not in chat.labels(USER):
                await chat.tap(USER, "Something else")
                taps += 1
            sent = await chat.tap(USER, objection.label)
            taps += 1
            assert taps <= 4
            if objection.id in ("other_offer", "bad_company"):
                # First the question that tells whether the article's exception applies.
                assert "?" in texts(sent) and len(chat.labels(USER)) >= 3, objection.id
            else:
                assert "Source:" in texts(sent), objection.id
                assert "I'll pass" in " ".join(chat.labels(USER)), objection.id


async def test_prepare_branch_and_back_buttons(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.to_menu(USER)
        await chat.tap(USER, "Something else")
        sent = await chat.tap(USER, "Back")
        assert "What holds you back" in texts(sent)
        assert "I'll pass" in chat.labels(USER)  # leaning no: deciding is one tap away
        await chat.say(USER, "/restart")
        sent = await chat.tap(USER, "Unsure about an invite")
        assert "which way do you lean" in texts(sent)
        sent = await chat.tap(USER, "Back")
        assert "What brings you here" in texts(sent)
        await chat.tap(USER, "Unsure about an invite")
        sent = await chat.tap(USER, "Leaning yes")
        assert "what do you decide" in texts(sent)
        sent = await chat.say(USER, "/restart")
        assert "Fresh start" in texts(sent)
        sent = await chat.tap(USER, "Going, want to prepare")
        assert "When is the interview?" in texts(sent)


# A message the test makes ambiguous itself: the two readings it makes close, and where.
AMBIGUOUS = "something about the role, hard to say"


class OneMessageChosen:
    """The real model, except for one message, whose probabilities the test chooses: the
    named ones, the rest spread evenly over every other label."""

    def __init__(self, real: LinearTextModel, text: str, **chosen: float) -> None:
        self.labels = real.labels
        self._real = real
        self._text = normalise(text)
        rest = (1.0 - sum(chosen.values())) / (len(self.labels) - len(chosen))
        self._chosen = tuple(chosen.get(label, rest) for label in self.labels)

    def probabilities(self, text: str) -> Sequence[float]:
        return self._chosen if text == self._text else self._real.probabilities(text)


async def test_free_text_clear_ambiguous_unknown_and_scam(
    api: FakeBotApi,
    make_settings: Callable[..., Settings],
    clock: FakeClock,
    kb: KnowledgeBase,
    classifier: ObjectionClassifier,
) -> None:
    # Two readings close together (0.36 and 0.34) and everything else far behind (0.0375
    # each): a close race between "not looking" and "overqualified".
    model = OneMessageChosen(classifier.model, AMBIGUOUS, not_looking=0.36, overqualified=0.34)
    chosen = ObjectionClassifier(cast(LinearTextModel, model))
    settings = make_settings()
    coach = await open_coach(settings, clock=clock, kb=kb, classifier=chosen)
    runtime = BotRuntime(settings, coach, clock=clock)
    await runtime.start(poll_timeout=1)
    try:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start")
        sent = await chat.say(USER, "I'm so nervous, I always freeze in interviews")
        assert "Source:" in texts(sent)
        sent = await chat.say(USER, AMBIGUOUS)
        assert html.unescape(texts(sent)) == (
            "<b>Did you mean that you're happy in your current job, "
            "or that the role is below your level?</b>"
        )
        assert chat.labels(USER) == [
            "Happy where I am",
            "It's a step down",
            "Neither: show the list",
        ]
        sent = await chat.tap(USER, "Neither")
        assert "What holds you back?" in texts(sent)
        sent = await chat.say(USER, "qwzx plmk vvvv")
        assert "not sure I understood" in texts(sent)
        assert "Something else…" in chat.labels(USER), "never a dead end: the menu follows"
        sent = await chat.say(
            USER, "the recruiter wants me to pay a fee and send my bank card details on WhatsApp"
        )
    finally:
        await runtime.stop()
    warning = texts(sent)
    assert "fraud" in warning and "never" in warning
    assert "I'll go" not in chat.labels(USER), "no encouragement to proceed"
    assert "I'll pass: steer clear" in chat.labels(USER)


async def test_a_typed_no_is_an_answer_at_every_step(api: FakeBotApi, running_bot: Any) -> None:
    no = "no thanks, I'm not going"
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.to_menu(USER)
        sent = await chat.say(USER, no)  # at the menu
        assert "That's your call" in texts(sent) and "Source:" not in texts(sent)
        await chat.to_menu(USER)
        await chat.tap(USER, "I'm nervous")
        sent = await chat.say(USER, no)  # on an argument
        assert "That's your call" in texts(sent)
        await chat.say(USER, "/interview")
        sent = await chat.say(USER, no)  # asked for the interview time
        assert "That's your call" in texts(sent)
        await chat.say(USER, "/interview Tue 3pm")
        sent = await chat.say(USER, "ok fine ill go i guess")  # on the confirmation
        assert "make the most of it" in texts(sent)
    assert not [c for c in api.calls if not c.ok]


async def test_sticker_forged_button_and_hostile_input(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start", first_name="<b>Eve</b> & <script>")
        sent = await chat.sticker(USER)
        assert "only read text" in texts(sent)
        assert chat.labels(USER) == [
            "Unsure about an invite",
            "Going, want to prepare",
            "Just exploring",
        ]
        for forged in ["v1:obj:../../etc", "v9:dec:go", "x" * 64, "", "v1:whenok:9999999999999"]:
            sent = await chat.press(USER, forged)
            # Said so, and where we are shown again: the menu, unchanged.
            assert "no longer works" in texts(sent), forged
            assert chat.labels(USER)[0] == "Unsure about an invite", forged
        sent = await chat.say(USER, "<b>" * 800 + "&amp;" * 100)
        # Nothing in it to understand: the bot says so and offers the worries to choose from.
        assert "not sure" in texts(sent).lower()
        assert "What holds you back?" in texts(sent)
        sent = await chat.say(USER, "/nonsense_command")
        assert "don't know that command" in texts(sent)
    failed = [c for c in api.calls if not c.ok]
    assert not failed, [(c.method, c.params) for c in failed]
    greeting = api.sent_messages(USER)[0]["text"]
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; &lt;script&gt;" in greeting
    presses = api.calls_of("answerCallbackQuery")
    assert [c.params.get("text") for c in presses] == ["That button no longer works"] * 5


async def test_restart_keeps_state_and_old_buttons_work(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.to_menu(USER)
        menu = api.last_bot_message(USER)
        assert menu is not None
        old = (
            api.button_data(USER, "Not worth my time")
            if "Not worth my time" in chat.labels(USER)
            else api.last_keyboard(USER)[0][0]["callback_data"]
        )
    async with running_bot() as runtime:  # a new process on the same database
        chat = Conversation(api, runtime)
        sent = await chat._exchange(USER, lambda: api.push_callback(USER, old, menu))
        assert "Source:" in texts(sent)
        sent = await chat.say(USER, "/help")
        assert "What I can do" in texts(sent)
        assert "Another reason" in chat.labels(USER), "help shows where the user was"
    assert all(c.ok for c in api.calls_of("answerCallbackQuery"))


async def test_several_users_at_once(api: FakeBotApi, running_bot: Any) -> None:
    users = list(range(700, 708))
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        target = chat.done + len(users)
        for user in users:
            api.push_message(user, "/start", f"User{user}")
        await chat._wait_done(target)
        target = chat.done + len(users)
        for user in users:
            api.click(user, "Just exploring")
        await chat._wait_done(target)
    for user in users:
        sent = api.sent_messages(user)
        assert f"User{user}" in sent[0]["text"]
        assert "which way do you lean" in sent[-1]["text"]


async def test_webhook_mode(api: FakeBotApi, running_bot: Any, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/hook"
    async with running_bot(
        webhook=True,
        webhook_url=url,
        webhook_listen="127.0.0.1",
        webhook_port=unused_tcp_port,
        webhook_secret="s3cret",
    ) as runtime:
        assert api.calls_of("setWebhook")[-1].params["url"] == url
        chat = Conversation(api, runtime)
        forged = await api.post_update(url, api.push_message(USER, "/start", enqueue=False))
        assert forged == 403, "a post without the secret is refused"
        update = api.push_message(USER, "/start", "Wes", enqueue=False)
        status = await api.post_update(url, update, secret_token="s3cret")
        assert status == 200
        await chat._wait_done(1)
    assert "Wes" in api.sent_messages(USER)[0]["text"]


async def test_start_up_survives_set_my_commands_failure(api: FakeBotApi, running_bot: Any) -> None:
    api.fail_next("setMyCommands", 500, "Internal Server Error")
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        sent = await chat.say(USER, "/start")
    assert "What brings you here" in texts(sent)


async def test_blocked_user_is_marked_inactive(api: FakeBotApi, running_bot: Any) -> None:
    async with running_bot() as runtime:
        chat = Conversation(api, runtime)
        await chat.say(USER, "/start")
        api.block_user(USER)
        await chat.tap(USER, "Just exploring")
        record = await runtime.coach.store.load_user(USER)
    assert record is not None and not record.active


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
