"""Drives lariat's OpenAI-compatible endpoint with the official `openai` SDK, unchanged."""
import os
import sys

from openai import OpenAI

client = OpenAI(base_url=os.environ["LARIAT_BASE"], api_key=os.environ["LARIAT_KEY"], max_retries=0)

models = [m.id for m in client.models.list()]
assert models == ["rodeo"], models

question = [{"role": "user", "content": "How long is a heading rope?"}]
reply = client.chat.completions.create(model="rodeo", messages=question)
text = reply.choices[0].message.content
assert reply.choices[0].finish_reason == "stop", reply
assert "[1]" in text or "[2]" in text, text
assert "Sources:" in text, text
citations = reply.model_extra["citations"]
assert citations and all("chunk_id" in c and "n" in c for c in citations), citations

pieces, final = [], None
stream = client.chat.completions.create(
    model="rodeo",
    messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is team roping?"},
        {"role": "assistant", "content": "A timed event for two riders."},
        {"role": "user", "content": [{"type": "text", "text": "How long is a heeling rope?"}]},
    ],
    stream=True,
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.choices and chunk.choices[0].finish_reason:
        final = chunk
answer = "".join(pieces)
assert len(pieces) > 3, pieces
assert "Sources:" in answer, answer
assert final is not None and final.model_extra.get("citations"), final
print("ok:", answer[:120].replace("\n", " "), file=sys.stderr)
