"""The OpenAI stand-in in a process of its own, for benchmarks where its CPU must not be the bot's.

    python -m bench._openai_server --delays '{"chat": 1.5}' --recordings 200

Prints `listening on URL` once ready. Completions answer per request (a different request gets
a different reply); recording number i (see `recording`) transcribes to `transcript(i)`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator

from bench._common import reply_per_request
from tests.standins.openai import AUDIO_DIR, FakeOpenAI

BASE_RECORDING = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()


def recording(i: int) -> bytes:
    """Learner i's own recording: valid Ogg bytes, different for every i."""
    return BASE_RECORDING + f"#learner-recording-{i}".encode()


def transcript(i: int) -> str:
    return f"Ahoj, jmenuji se Petr, je mi {i % 90 + 10} let a bydlím v domě číslo {i}."


async def serve(delays: dict[str, float], recordings: int) -> None:
    async with FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        oa.delay.update(delays)
        for i in range(recordings):
            oa.add_transcript(recording(i), transcript(i))
        print(f"listening on {oa.base_url}", flush=True)
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def openai_process(delays: dict[str, float], recordings: int) -> AsyncIterator[str]:
    """Start the stand-in process; yields its base URL; stops it (by its own pid) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._openai_server",
        "--delays",
        json.dumps(delays),
        "--recordings",
        str(recordings),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the OpenAI stand-in did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delays", default="{}")
    parser.add_argument("--recordings", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(json.loads(args.delays), args.recordings))


if __name__ == "__main__":
    main()
