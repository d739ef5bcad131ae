"""Conformance of the steer mock with the official OpenAI and Anthropic clients.

Run by tests/conformance.rs with STEER_MOCK_URL set to a running mock. Prints one
JSON object with what each client parsed; exits non-zero on any client complaint.
"""
import json
import os
import sys
import warnings

warnings.simplefilter("error")  # any client warning (e.g. unparsed field) is a failure

import anthropic
import openai

BASE = os.environ["STEER_MOCK_URL"]
out = {}

oa = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-conformance", max_retries=0)
msgs = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Tell me about rivers."}]

for model in ["gpt-4o-mini", "grok-3-mini"]:
    r = oa.chat.completions.create(model=model, messages=msgs)
    assert r.object == "chat.completion", r
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.choices[0].finish_reason == "stop"
    text = []
    usage = None
    finish = None
    with oa.chat.completions.create(model=model, messages=msgs, stream=True,
                                    stream_options={"include_usage": True}) as s:
        for chunk in s:
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            for c in chunk.choices:
                if c.delta.content:
                    text.append(c.delta.content)
                if c.finish_reason:
                    finish = c.finish_reason
    assert finish == "stop", finish
    out[model] = {"text": r.choices[0].message.content, "stream_text": "".join(text),
                  "stream_usage": usage, "request_id": r._request_id}

try:
    oa.chat.completions.create(model="gpt-4o-mini", messages=msgs,
                               extra_headers={"x-mock-fault": "rate_limit?retry_after=2"})
    raise SystemExit("expected RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
    assert e.code == "rate_limit_exceeded", e.code
    assert e.type == "requests", e.type
    assert e.response.headers["retry-after"] == "2"
    out["openai_error"] = {"status": e.status_code, "code": e.code, "message": e.message}

try:
    with oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                    extra_headers={"x-mock-fault": "stream_error?name=server_error&after=2"}) as s:
        for _ in s:
            pass
    raise SystemExit("expected an in-band APIError")
except openai.APIError as e:
    out["openai_in_band"] = str(e.message)

an = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-conformance", max_retries=0)
amsgs = [{"role": "user", "content": "Tell me about rivers."}]
model = "claude-3-5-haiku-latest"
r = an.messages.create(model=model, max_tokens=1024, system="You are terse.", messages=amsgs)
assert r.type == "message" and r.stop_reason == "end_turn", r
text = []
with an.messages.stream(model=model, max_tokens=1024, system="You are terse.", messages=amsgs) as s:
    for t in s.text_stream:
        text.append(t)
    final = s.get_final_message()
assert final.stop_reason == "end_turn"
out[model] = {"text": r.content[0].text, "stream_text": "".join(text),
              "stream_usage": final.usage.output_tokens, "request_id": r._request_id}

try:
    an.messages.create(model=model, max_tokens=64, messages=amsgs,
                       extra_headers={"x-mock-fault": "overloaded"})
    raise SystemExit("expected an overloaded error")
except anthropic.APIStatusError as e:
    assert e.status_code == 529, e.status_code
    assert e.body["error"]["type"] == "overloaded_error", e.body
    out["anthropic_error"] = {"status": e.status_code, "type": e.body["error"]["type"]}

try:
    with an.messages.stream(model=model, max_tokens=64, messages=amsgs,
                            extra_headers={"x-mock-fault": "stream_error?name=overloaded&after=1"}) as s:
        for _ in s.text_stream:
            pass
    raise SystemExit("expected an in-band overloaded error")
except anthropic.APIStatusError as e:
    out["anthropic_in_band"] = e.body["error"]["type"]

print(json.dumps(out))
