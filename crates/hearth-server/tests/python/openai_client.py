"""The official `openai` Python package against Hearth's /v1 API, unmodified.

Usage: python openai_client.py BASE_URL API_KEY  (BASE_URL like http://127.0.0.1:PORT/v1)
Exits non-zero with a message on the first failed expectation.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)


def expect(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


models = [m.id for m in client.models.list()]
expect("fake-chat" in models, f"models list has fake-chat: {models}")

done = client.chat.completions.create(
    model="fake-chat", messages=[{"role": "user", "content": "hello there"}]
)
expect(done.choices[0].message.content == "You said: hello there", f"non-stream content: {done}")
expect(done.usage.completion_tokens > 0, f"usage reported: {done.usage}")
expect(done.choices[0].finish_reason == "stop", "finish reason stop")

text = []
usage = None
for chunk in client.chat.completions.create(
    model="fake-chat",
    messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "stream me"}],
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            text.append(choice.delta.content)
expect("".join(text) == "You said: stream me", f"streamed text: {text}")
expect(usage is not None and usage.total_tokens > 0, f"usage chunk: {usage}")

tools = [{
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "arithmetic",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}]
call = client.chat.completions.create(
    model="fake-tools",
    messages=[{"role": "user", "content": "calculate 2+2"}],
    tools=tools,
    tool_choice="auto",
)
calls = call.choices[0].message.tool_calls
expect(call.choices[0].finish_reason == "tool_calls", f"finish tool_calls: {call}")
expect(calls and calls[0].function.name == "calculator", f"tool call: {calls}")
expect(json.loads(calls[0].function.arguments) == {"expression": "2+2"}, "tool arguments")

# Streamed tool calls assemble in the client too, and results go back in a second turn.
stream_args = ""
stream_name = None
for chunk in client.chat.completions.create(
    model="fake-tools",
    messages=[{"role": "user", "content": "calculate 5*5"}],
    tools=tools,
    stream=True,
):
    for choice in chunk.choices:
        for tc in choice.delta.tool_calls or []:
            stream_name = tc.function.name or stream_name
            stream_args += tc.function.arguments or ""
expect(stream_name == "calculator", f"streamed tool name: {stream_name}")
expect(json.loads(stream_args) == {"expression": "5*5"}, f"streamed tool args: {stream_args}")
final = client.chat.completions.create(
    model="fake-tools",
    messages=[
        {"role": "user", "content": "calculate 5*5"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": calls[0].id, "type": "function", "function": {"name": "calculator", "arguments": stream_args}}]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "25"},
    ],
    tools=tools,
)
expect(final.choices[0].message.content == "The result is 25.", f"answer after tool: {final}")

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    expect(False, "unknown model should fail")
except openai.NotFoundError as e:
    expect("no-such-model" in str(e), f"not-found message names the model: {e}")

try:
    openai.OpenAI(base_url=base_url, api_key="hk_wrong", max_retries=0).models.list()
    expect(False, "a wrong key should fail")
except openai.AuthenticationError:
    pass

print("openai client: all checks passed")
