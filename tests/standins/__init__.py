"""Stand-in servers for the bot's upstreams (Telegram Bot API, OpenAI), for end-to-end tests.

Typical fixtures::

    @pytest.fixture
    async def tg() -> AsyncIterator[FakeTelegram]:
        async with FakeTelegram() as server:  # 127.0.0.1, ephemeral port
            yield server  # bot env: BOT_TOKEN=server.token, TELEGRAM_API_URL=server.base_url

    @pytest.fixture
    async def oa() -> AsyncIterator[FakeOpenAI]:
        async with FakeOpenAI() as server:
            yield server  # bot env: OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=anything
"""
