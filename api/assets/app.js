// Lariat's one hand-written module. The chat is a POST, so its server-sent events are read from
// fetch's stream (EventSource can only GET). Streamed text is inserted as text, never as HTML; when
// the answer is done the server's rendering of it (sanitised Markdown, citation chips) replaces it.

const form = document.getElementById("ask");

/** Splits a stream of server-sent events into {event, data} objects (WHATWG rules, simplified:
 * the server sends LF line ends and one data line per event). */
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function chat(form) {
  const messages = document.getElementById("messages");
  const box = document.getElementById("message");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const problem = document.getElementById("ask-error");
  let controller = null;

  function busy(on) {
    send.disabled = on;
    stop.hidden = !on;
  }

  function fail(text, retry) {
    problem.hidden = false;
    problem.replaceChildren(element("span", "", text + " "));
    if (retry) {
      const again = element("button", "retry", "Retry");
      again.type = "button";
      again.addEventListener("click", () => {
        problem.hidden = true;
        ask(retry);
      });
      problem.append(again);
    }
  }

  async function ask(question) {
    problem.hidden = true;
    const mine = element("li", "msg user");
    mine.append(element("p", "text", question));
    const answer = element("li", "msg assistant streaming");
    const text = element("div", "text answer");
    answer.append(text);
    messages.append(mine, answer);
    const body = { message: question };
    if (form.dataset.conversation) body.conversation_id = form.dataset.conversation;
    const picked = form.querySelector("#collection");
    if (picked && picked.value) body.collections = [picked.value];
    controller = new AbortController();
    busy(true);
    let conversation = form.dataset.conversation;
    let messageId = null;
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
        credentials: "same-origin",
      });
      if (response.status === 401) {
        location.assign("/session/renew?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (!response.ok) {
        const error = await response.json().catch(() => null);
        answer.remove();
        fail(error?.error?.message ?? `The server answered ${response.status}.`, question);
        return;
      }
      for await (const { event, data } of readEvents(response)) {
        const payload = JSON.parse(data);
        if (event === "meta") {
          conversation = payload.conversation_id;
          messageId = payload.message_id;
        } else if (event === "delta") {
          text.append(document.createTextNode(payload.text));
        } else if (event === "error") {
          answer.classList.remove("streaming");
          fail(payload.message, question);
        } else if (event === "done") {
          messageId = payload.message_id;
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") fail("The connection was lost.", question);
    } finally {
      busy(false);
      controller = null;
    }
    if (conversation && conversation !== form.dataset.conversation) {
      form.dataset.conversation = conversation;
      history.replaceState(null, "", "/chat/" + encodeURIComponent(conversation));
      form.querySelector("label[for=collection]")?.remove();
      form.querySelector("#collection")?.remove();
      // the list now holds the new conversation; its title (the server's) heads the thread
      window.htmx
        ?.ajax("GET", "/chat/list?current=" + encodeURIComponent(conversation), "#conv-list")
        .then(() => {
          const current = document.querySelector("#conv-list [aria-current] a");
          const heading = document.querySelector(".thread-head h1");
          if (current && heading) heading.textContent = current.textContent;
        });
    }
    if (conversation && messageId) {
      const fragment = await fetch(
        `/chat/${encodeURIComponent(conversation)}/messages/${encodeURIComponent(messageId)}`,
        { credentials: "same-origin" },
      );
      if (fragment.ok) {
        const holder = document.createElement("template");
        holder.innerHTML = await fragment.text();
        const rendered = holder.content.firstElementChild;
        if (rendered) {
          answer.replaceWith(rendered);
          window.htmx?.process(rendered);
        }
      }
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const question = box.value.trim();
    if (!question || controller) return;
    box.value = "";
    ask(question);
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.key === "Escape" && controller) {
      controller.abort();
    }
  });
  stop.addEventListener("click", () => controller?.abort());
  // Regenerate asks the answer's question again; the new answer follows in the conversation.
  messages.addEventListener("click", (e) => {
    if (!e.target.closest("[data-regenerate]") || controller) return;
    let asked = e.target.closest(".msg")?.previousElementSibling;
    while (asked && !asked.classList.contains("user")) asked = asked.previousElementSibling;
    const question = asked?.querySelector(".text")?.textContent.trim();
    if (question) ask(question);
  });
}

// Copy puts an answer's text (without its citation chips' numbers) on the clipboard.
document.addEventListener("click", async (e) => {
  const button = e.target.closest("[data-copy-answer]");
  if (!button) return;
  const answer = button.closest(".msg")?.querySelector(".answer")?.cloneNode(true);
  if (!answer) return;
  for (const chip of answer.querySelectorAll(".cite")) chip.replaceWith(`[${chip.dataset.n}]`);
  try {
    await navigator.clipboard.writeText(answer.textContent.trim());
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => (button.textContent = "Copy"), 2000);
});

// A citation chip opens its source in the side panel, as the source's own button does.
document.addEventListener("click", (e) => {
  const chip = e.target.closest(".cite");
  if (chip) {
    const message = chip.closest(".msg");
    message?.querySelector(`.source[data-n="${chip.dataset.n}"]`)?.click();
    return;
  }
  if (e.target.closest("[data-close-panel]")) {
    document.getElementById("panel")?.replaceChildren();
  }
});

// A form that destroys something asks first.
document.addEventListener("submit", (e) => {
  const question = e.target.dataset?.confirm;
  if (question && !window.confirm(question)) e.preventDefault();
});

// Hovering or focusing a citation chip shows its source's card (title, place, snippet).
const card = element("div", "hover-card");
card.setAttribute("role", "tooltip");
card.id = "hover-card";
card.hidden = true;
document.body.append(card);

function showCard(chip) {
  const source = chip.closest(".msg")?.querySelector(`.source[data-n="${chip.dataset.n}"]`);
  if (!source) return;
  card.replaceChildren(
    element("strong", "", source.textContent.trim()),
    element("p", "", source.parentElement.querySelector(".snippet")?.textContent ?? ""),
  );
  const box = chip.getBoundingClientRect();
  card.style.left = `${Math.min(box.left + window.scrollX, window.innerWidth - 340 + window.scrollX)}px`;
  card.style.top = `${box.bottom + window.scrollY + 6}px`;
  card.hidden = false;
  chip.setAttribute("aria-describedby", card.id);
}

for (const kind of ["mouseover", "focusin"]) {
  document.addEventListener(kind, (e) => {
    const chip = e.target.closest?.(".cite");
    if (chip) showCard(chip);
  });
}
for (const kind of ["mouseout", "focusout"]) {
  document.addEventListener(kind, (e) => {
    if (e.target.closest?.(".cite")) card.hidden = true;
  });
}

// The side panel scrolls to the cited passage when it arrives.
document.addEventListener("htmx:afterSwap", (e) => {
  if (e.target.id === "panel") e.target.querySelector(".cited")?.focus();
});

if (form) chat(form);

// A copy button copies the text of the field it names.
document.addEventListener("click", async (e) => {
  const button = e.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  } catch {
    field.select();
    button.textContent = "Press Ctrl+C to copy";
  }
});

/** Posts one file to the collection's upload route, reporting the upload's progress; resolves
 * with the server's status and parsed answer once the file is indexed (or refused). */
function uploadOne(collection, file, onProgress, onSent) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const url = `/api/collections/${encodeURIComponent(collection)}/documents?filename=${encodeURIComponent(file.name)}`;
    xhr.open("POST", url);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", onSent);
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      resolve({ status: xhr.status, body });
    });
    xhr.addEventListener("error", () => resolve({ status: 0, body: null }));
    xhr.send(file);
  });
}

/** Reads an upload job until it ends (after 1 s, then less and less often, every 10 s at most:
 * each read counts against the plan's request rate), telling `onProgress` each time; resolves with
 * the job as it ended (or as last read, when the connection is lost). */
async function followJob(collection, job, onProgress) {
  const url = `/api/collections/${encodeURIComponent(collection)}/uploads/${encodeURIComponent(job.id)}`;
  let wait = 1000;
  while (job.status === "running") {
    onProgress(job);
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 1.5, 10000);
    try {
      const response = await fetch(url, { headers: { accept: "application/json" } });
      if (response.status === 429) {
        wait = Math.max(wait, 1000 * Number(response.headers.get("retry-after") || 10));
        continue;
      }
      if (!response.ok) return { ...job, status: "failed", error: `the server answered ${response.status}` };
      job = await response.json();
    } catch {
      return { ...job, status: "failed", error: "the connection was lost" };
    }
  }
  return job;
}

function uploads(form) {
  const input = form.querySelector("input[type=file]");
  const drop = form.querySelector(".drop");
  const list = document.getElementById("uploads");
  const collection = form.dataset.collection;
  const maxBytes = Number(form.dataset.maxBytes);

  async function send(files) {
    const rows = files.map((file) => {
      const row = element("li", "upload");
      const name = element("span", "file", file.name);
      const bar = element("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", `Upload of ${file.name}`);
      const state = element("span", "state", "Waiting");
      row.append(name, bar, state);
      list.append(row);
      return { file, row, bar, state };
    });
    for (const { file, row, bar, state } of rows) {
      if (file.size > maxBytes) {
        row.classList.add("failed");
        state.textContent = `Failed: larger than ${Math.round(maxBytes / 1048576)} MB`;
        continue;
      }
      state.textContent = "Uploading";
      const { status, body } = await uploadOne(
        collection,
        file,
        (part) => (bar.value = Math.round(part * 100)),
        () => {
          bar.value = 100;
          state.textContent = "Indexing";
        },
      );
      if (status === 200 || status === 201) {
        row.classList.add("done");
        const changed = body?.added + body?.updated > 0;
        state.textContent = changed ? `Indexed: ${body.chunks} passages` : "Already indexed, unchanged";
      } else if (status === 202) {
        // a large file: its job indexes it while this row follows the job's progress
        const job = await followJob(collection, body, (j) => {
          bar.value = j.passages_total ? Math.round((100 * j.passages_done) / j.passages_total) : 0;
          state.textContent = `Indexing: ${j.passages_done} of ${j.passages_total} passages`;
        });
        if (job.status === "succeeded") {
          bar.value = 100;
          row.classList.add("done");
          state.textContent = `Indexed: ${job.report?.chunks ?? job.passages_done} passages`;
        } else {
          row.classList.add("failed");
          state.textContent = `${job.status === "failed" ? "Failed" : "Stopped"}: ${job.error || job.status}`;
        }
      } else if (status === 401) {
        location.assign("/session/renew?next=" + encodeURIComponent(location.pathname));
        return;
      } else {
        row.classList.add("failed");
        state.textContent = `Failed: ${body?.error?.message ?? (status ? `the server answered ${status}` : "the connection was lost")}`;
      }
    }
    window.htmx?.ajax("GET", `/collections/${encodeURIComponent(collection)}/documents`, {
      target: "#documents",
      swap: "outerHTML",
    });
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.files.length) send([...input.files]);
    input.value = "";
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) send([...e.dataTransfer.files]);
  });
}

const upload = document.getElementById("upload");
if (upload) uploads(upload);
