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

# Tool calls and structured output, parsed by the official clients.
weather = {"type": "object",
           "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"]}
tool_msgs = [{"role": "user", "content": "What's the weather in Oslo?"}]
for model in ["gpt-4o-mini", "grok-3-mini"]:
    r = oa.chat.completions.create(model=model, messages=tool_msgs, tool_choice="required",
                                   tools=[{"type": "function", "function": {"name": "get_weather", "parameters": weather}}])
    assert r.choices[0].finish_reason == "tool_calls", r
    call = r.choices[0].message.tool_calls[0]
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and isinstance(args["city"], str) and 1 <= args["days"] <= 7, args
    # Streamed: the client accumulates the argument pieces.
    pieces, names, finish = {}, {}, None
    with oa.chat.completions.create(model=model, messages=tool_msgs, tool_choice="required", stream=True,
                                    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": weather}}]) as s:
        for chunk in s:
            for c in chunk.choices:
                for tc in (c.delta.tool_calls or []):
                    if tc.function and tc.function.name:
                        names[tc.index] = tc.function.name
                    if tc.function and tc.function.arguments:
                        pieces[tc.index] = pieces.get(tc.index, "") + tc.function.arguments
                if c.finish_reason:
                    finish = c.finish_reason
    assert finish == "tool_calls" and names == {0: "get_weather"}, (finish, names)
    assert json.loads(pieces[0]) == args, (pieces, args)
    # Second turn: the result leads to text.
    r2 = oa.chat.completions.create(model=model, messages=tool_msgs + [
        {"role": "assistant", "content": r.choices[0].message.content, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"forecast": "rain"}'}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": weather}}])
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content, r2
    # Structured output.
    r3 = oa.chat.completions.create(model=model, messages=msgs, response_format={
        "type": "json_schema", "json_schema": {"name": "forecast", "schema": weather, "strict": True}})
    parsed = json.loads(r3.choices[0].message.content)
    assert isinstance(parsed["city"], str) and 1 <= parsed["days"] <= 7, parsed
    out[model + "_tools"] = {"arguments": args, "structured": parsed}

r = an.messages.create(model=model if False else "claude-3-5-haiku-latest", max_tokens=256, messages=tool_msgs,
                       tools=[{"name": "get_weather", "input_schema": weather}], tool_choice={"type": "any"})
assert r.stop_reason == "tool_use", r
use = [b for b in r.content if b.type == "tool_use"][0]
assert use.name == "get_weather" and 1 <= use.input["days"] <= 7, use
with an.messages.stream(model="claude-3-5-haiku-latest", max_tokens=256, messages=tool_msgs,
                        tools=[{"name": "get_weather", "input_schema": weather}], tool_choice={"type": "any"}) as s:
    for _ in s:
        pass
    final = s.get_final_message()
streamed_use = [b for b in final.content if b.type == "tool_use"][0]
assert final.stop_reason == "tool_use" and streamed_use.input == use.input, (final, use)
r2 = an.messages.create(model="claude-3-5-haiku-latest", max_tokens=256, tools=[{"name": "get_weather", "input_schema": weather}],
                        messages=tool_msgs + [{"role": "assistant", "content": [b.model_dump() for b in r.content]},
                                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                                            "content": '{"forecast": "rain"}'}]}])
assert r2.stop_reason == "end_turn" and r2.content[0].text, r2
r3 = an.messages.create(model="claude-3-5-haiku-latest", max_tokens=256, messages=amsgs,
                        extra_body={"output_config": {"format": {"type": "json_schema", "schema": weather}}})
structured = json.loads(r3.content[0].text)
assert isinstance(structured["city"], str), structured
out["anthropic_tools"] = {"arguments": use.input, "structured": structured}

# The Responses API, parsed by the official client's typed models.
r = oa.responses.create(model="gpt-5-mini", instructions="You are terse.", input="Tell me about rivers.")
assert r.object == "response" and r.status == "completed", r
assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage
text, kinds, sequence, final = [], [], [], None
with oa.responses.create(model="gpt-5-mini", instructions="You are terse.", input="Tell me about rivers.",
                         stream=True) as s:
    for event in s:
        kinds.append(event.type)
        sequence.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        if event.type == "response.completed":
            final = event.response
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert sequence == list(range(len(sequence))), sequence
assert final.output_text == r.output_text, (final.output_text, r.output_text)
out["responses"] = {"text": r.output_text, "stream_text": "".join(text),
                    "stream_usage": final.usage.output_tokens, "request_id": r._request_id}
r = oa.responses.create(model="gpt-5-mini", input="What's the weather in Oslo?", tool_choice="required",
                        tools=[{"type": "function", "name": "get_weather", "parameters": weather, "strict": True}])
call = [o for o in r.output if o.type == "function_call"][0]
args = json.loads(call.arguments)
assert call.name == "get_weather" and call.call_id.startswith("call_"), call
pieces, done = "", None
with oa.responses.create(model="gpt-5-mini", input="What's the weather in Oslo?", tool_choice="required",
                         stream=True,
                         tools=[{"type": "function", "name": "get_weather", "parameters": weather, "strict": True}]) as s:
    for event in s:
        if event.type == "response.function_call_arguments.delta":
            pieces += event.delta
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            done = event.item
assert json.loads(pieces) == args and done.call_id == call.call_id, (pieces, done)
r2 = oa.responses.create(model="gpt-5-mini", input=[
    {"role": "user", "content": "What's the weather in Oslo?"},
    {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
    {"type": "function_call_output", "call_id": call.call_id, "output": '{"forecast": "rain"}'}],
    tools=[{"type": "function", "name": "get_weather", "parameters": weather, "strict": True}])
assert r2.status == "completed" and r2.output_text, r2
r3 = oa.responses.create(model="gpt-5-mini", input="Tell me about rivers.",
                         text={"format": {"type": "json_schema", "name": "forecast", "schema": weather, "strict": True}})
structured = json.loads(r3.output_text)
out["responses_tools"] = {"arguments": args, "structured": structured}
errors = []
with oa.responses.create(model="gpt-5-mini", input="Tell me about rivers.", stream=True,
                         extra_headers={"x-mock-fault": "stream_error?name=rate_limit&after=2"}) as s:
    for event in s:
        if event.type == "error":
            errors.append({"code": event.code, "message": event.message})
assert len(errors) == 1, errors
out["responses_in_band"] = errors[0]

# Background mode: a stream broken on the line is resumed with
# responses.retrieve(id, stream=True, starting_after=N), and a background
# response can be cancelled.
rid, last, before = None, None, []
try:
    with oa.responses.create(model="gpt-5-mini", instructions="You are terse.", input="Tell me about rivers.",
                             stream=True, background=True,
                             extra_headers={"x-mock-fault": "reset?after=3"}) as s:
        for event in s:
            last = event.sequence_number
            if event.type == "response.created":
                rid = event.response.id
                assert event.response.background and event.response.status == "queued", event.response
            if event.type == "response.output_text.delta":
                before.append(event.delta)
    raise AssertionError("the stream was to break")
except AssertionError:
    raise
except Exception:
    pass
assert rid and len(before) == 3, (rid, before)
after, final = [], None
for event in oa.responses.retrieve(rid, stream=True, starting_after=last):
    assert event.sequence_number > last, (event.sequence_number, last)
    if event.type == "response.output_text.delta":
        after.append(event.delta)
    if event.type == "response.completed":
        final = event.response
assert final is not None and final.background, final
try:
    oa.responses.retrieve(rid + "x", stream=True, starting_after=0)
    raise AssertionError("an unknown response was streamed")
except openai.NotFoundError:
    pass
cancelled = None
try:
    with oa.responses.create(model="gpt-5-mini", input="Tell me about rivers.", stream=True, background=True,
                             extra_headers={"x-mock-fault": "reset?after=1"}) as s:
        for event in s:
            if event.type == "response.created":
                cancelled = event.response.id
except Exception:
    pass
c = oa.responses.cancel(cancelled)
assert c.status == "cancelled" and c.id == cancelled, c
out["responses_background"] = {"text": "".join(before + after), "after": last,
                               "output_tokens": final.usage.output_tokens}

# Reasoning state, as the official clients' types read it and send it back.
think = {"type": "adaptive"}
tmsgs = [{"role": "user", "content": "Tell me about rivers."}]
r = an.messages.create(model="claude-sonnet-4-6", max_tokens=2048, thinking=think, messages=tmsgs)
assert r.content[0].type == "thinking" and r.content[0].signature, r.content
with an.messages.stream(model="claude-sonnet-4-6", max_tokens=2048, thinking=think, messages=tmsgs) as s:
    thought, signature = "", None
    for event in s:
        if event.type == "content_block_delta" and event.delta.type == "thinking_delta":
            thought += event.delta.thinking
        if event.type == "content_block_delta" and event.delta.type == "signature_delta":
            signature = event.delta.signature
    final = s.get_final_message()
assert thought == r.content[0].thinking and signature == r.content[0].signature, (thought, signature)
assert final.content[0].signature == signature, final.content
again = an.messages.create(model="claude-sonnet-4-6", max_tokens=2048, thinking=think,
                           messages=tmsgs + [{"role": "assistant", "content": [b.model_dump() for b in r.content]},
                                             {"role": "user", "content": "And lakes?"}])
assert again.content[0].type == "thinking", again.content
changed = [b.model_dump() for b in r.content]
changed[0]["thinking"] += " Also seas."
try:
    an.messages.create(model="claude-sonnet-4-6", max_tokens=2048, thinking=think,
                       messages=tmsgs + [{"role": "assistant", "content": changed},
                                         {"role": "user", "content": "And lakes?"}])
    raise AssertionError("a changed thinking block was accepted")
except anthropic.BadRequestError as e:
    refused = e.body["error"]["message"]
r = oa.responses.create(model="gpt-5-mini", input="Tell me about rivers.", store=False,
                        reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"])
item = r.output[0]
assert item.type == "reasoning" and item.encrypted_content and item.summary[0].text, item
assert r.usage.output_tokens_details.reasoning_tokens > 0, r.usage
again = oa.responses.create(model="gpt-5-mini", store=False, include=["reasoning.encrypted_content"],
                            reasoning={"effort": "low"},
                            input=[{"role": "user", "content": "Tell me about rivers."}]
                            + [o.model_dump(exclude_none=True) for o in r.output]
                            + [{"role": "user", "content": "And lakes?"}])
assert again.status == "completed", again
out["reasoning"] = {"thinking": thought, "signature": signature, "refused": refused,
                    "encrypted": item.encrypted_content, "summary": item.summary[0].text}

print(json.dumps(out))
