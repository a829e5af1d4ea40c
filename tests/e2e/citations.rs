//! A model's citations put right as its answer streams, over HTTP against the local fake: every
//! surface (the chat's events, the stored conversation, the OpenAI-compatible endpoint streamed
//! or not) carries the same corrected answer.

use serde_json::{Value, json};

use crate::chat::{chat, conversation_of, one, one_model, parse_sse, text_of};
use crate::serve::Api;

/// The answer of `/v1/chat/completions` for `question`, streamed (its chunks' content joined)
/// or whole.
async fn completion(api: &Api, token: &str, question: &str, stream: bool) -> (String, Value) {
    let resp = api
        .client
        .post(format!("{}/v1/chat/completions", api.base))
        .bearer_auth(token)
        .json(&json!({
            "model": "rodeo",
            "stream": stream,
            "messages": [{"role": "user", "content": question}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    if !stream {
        let v: Value = serde_json::from_str(&body).unwrap();
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        return (content, v);
    }
    let chunks = parse_sse(&body);
    let content = chunks
        .iter()
        .filter_map(|(_, c)| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let last = chunks
        .iter()
        .rev()
        .find(|(_, c)| c["choices"][0]["finish_reason"] == "stop")
        .map(|(_, c)| c.clone())
        .expect("a finishing chunk");
    (content, last)
}

/// Asks `question` in a new conversation: the answer's events, and the sources it was given.
async fn answered(api: &Api, token: &str, question: &str) -> (Vec<(String, Value)>, Vec<Value>) {
    let (s, events) = chat(api, token, json!({ "message": question })).await;
    assert_eq!(s, 200, "{events:?}");
    let sources = one(&events, "citations")["citations"]
        .as_array()
        .unwrap()
        .clone();
    (events, sources)
}

/// A small model's citations are put right: a sentence cited to the wrong source gets the source
/// that holds it, an uncited one gets its source. The stream, the conversation and the
/// whole-answer surfaces all carry the corrected answer.
#[tokio::test]
async fn citations_a_model_gets_wrong_are_assigned_as_it_streams() {
    let (_fake, _lariat, _server, api, ann) = one_model("main", "miscite").await;

    let question = "How long is a heading rope?";
    let (events, sources) = answered(&api, &ann, question).await;
    assert!(sources.len() > 2, "{sources:?}");
    let done = one(&events, "done");
    let check = &done["citation_check"];
    let reassigned = check["reassigned"].as_array().unwrap();
    assert_eq!(reassigned.len(), 2, "{done}");
    assert_eq!(reassigned[0]["from"], json!([sources.len()]));
    assert_eq!(reassigned[1]["from"], json!([]));
    for r in reassigned {
        // the source given holds the sentence
        let to = r["to"].as_array().unwrap();
        assert_eq!(to.len(), 1, "{r}");
        let to = to[0].as_u64().unwrap() as usize;
        let sentence = r["sentence"].as_str().unwrap().trim_end_matches('.');
        let text = sources[to - 1]["text"].as_str().unwrap();
        assert!(
            text.contains(sentence),
            "[{to}] {text:?} lacks {sentence:?}"
        );
    }
    // the stream never showed the wrong marker
    let streamed = text_of(&events);
    assert!(
        !streamed.contains(&format!("[{}]", sources.len())),
        "{streamed}"
    );
    assert_eq!(check["unsupported"], json!([]), "{check}");
    assert_eq!(
        check["cited"].as_array().unwrap().len(),
        2 - usize::from(reassigned[0]["to"] == reassigned[1]["to"])
    );

    // the conversation keeps what streamed
    let full = conversation_of(&api, &ann, &events).await;
    let reply = full["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap();
    assert_eq!(reply["content"], streamed, "{full}");
    assert_eq!(reply["unsupported"], json!([]));

    // the OpenAI-compatible endpoint, whole and streamed, gives the same answer
    let (whole, body) = completion(&api, &ann, question, false).await;
    assert!(whole.starts_with(&streamed), "{whole:?} vs {streamed:?}");
    assert_eq!(
        body["citation_check"]["reassigned"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (chunked, last) = completion(&api, &ann, question, true).await;
    assert_eq!(chunked, whole);
    assert_eq!(
        last["citations"].as_array().unwrap().len(),
        body["citations"].as_array().unwrap().len(),
        "{last}"
    );
}

/// The answer that swaps two near-duplicate passages' citations ("Heel ropes … 35 to 40 feet
/// [head-rope passage]. Head ropes … 30 to 35 feet [heel-rope passage].") has both markers moved
/// to the passage that holds each sentence's numbers, on every surface.
#[tokio::test]
async fn swapped_citations_are_moved_to_the_passage_holding_the_facts() {
    let (_fake, _lariat, _server, api, ann) = one_model("main", "swap").await;
    let question = "How long are heading and heeling ropes?";
    let (events, sources) = answered(&api, &ann, question).await;
    let holding = |words: &str| {
        1 + sources
            .iter()
            .position(|s| s["text"].as_str().unwrap().contains(words))
            .unwrap_or_else(|| panic!("no source holds {words}: {sources:?}"))
    };
    let (head, heel) = (holding("30 to 35 feet"), holding("35 to 40 feet"));
    assert_ne!(head, heel, "the two lengths are in separate passages");
    let streamed = text_of(&events);
    assert_eq!(
        streamed,
        format!(
            "Heel ropes are longer, typically 35 to 40 feet [{heel}]. Head ropes are typically 30 to 35 feet long [{head}]."
        )
    );
    let check = &one(&events, "done")["citation_check"];
    assert_eq!(check["unsupported"], json!([]), "{check}");
    let moves: Vec<(Value, Value)> = check["reassigned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from"].clone(), r["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (json!([head]), json!([heel])),
            (json!([heel]), json!([head]))
        ]
    );
    let (whole, _) = completion(&api, &ann, question, false).await;
    let (chunked, _) = completion(&api, &ann, question, true).await;
    assert!(whole.starts_with(&streamed), "{whole:?}");
    assert_eq!(chunked, whole);
}

/// A sentence whose numbers no passage holds ("10 to 25 feet" where the passages say 30 to 35)
/// gets no citation and is reported unsupported, in the stream, the stored message and the web
/// page's marking; an answer none of which is grounded ends saying the sources do not say it, on
/// every surface.
#[tokio::test]
async fn a_sentence_whose_numbers_no_passage_holds_cites_nothing() {
    let (_fake, _lariat, _server, api, ann) = one_model("main", "misstate").await;
    let (s, events) = chat(
        &api,
        &ann,
        json!({"message": "How long is a heading rope?"}),
    )
    .await;
    assert_eq!(s, 200, "{events:?}");
    let sentence = "A heading rope is typically 10 to 25 feet long.";
    let answer = format!(
        "{sentence}\n\nThe sources do not say this, so I cannot answer it from the documents."
    );
    assert_eq!(text_of(&events), answer);
    let check = &one(&events, "done")["citation_check"];
    assert_eq!(check["cited"], json!([]), "{check}");
    assert_eq!(
        check["unsupported"],
        json!([{"sentence": sentence, "cited": [], "support": 0.0}])
    );
    assert_eq!(
        check["reassigned"],
        json!([{"sentence": sentence, "from": [1], "to": [], "support": 0.0}])
    );
    let full = conversation_of(&api, &ann, &events).await;
    let reply = &full["messages"][1];
    assert_eq!(reply["content"], answer, "{full}");
    assert_eq!(reply["unsupported"][0]["sentence"], sentence);
    let question = "How long is a heading rope?";
    let (whole, _) = completion(&api, &ann, question, false).await;
    let (chunked, _) = completion(&api, &ann, question, true).await;
    assert!(whole.starts_with(&answer), "{whole:?}");
    assert_eq!(chunked, whole);
}

/// Asked how much of something no source names, the answer says the documents do not say it,
/// and the model is not asked to guess; a quantity the sources name goes to the model.
#[tokio::test]
async fn a_quantity_no_source_names_is_refused_without_asking_the_model() {
    let (fake, _lariat, _server, api, ann) = one_model("main", "plain").await;
    let question = "How much prize money does the champion win at the year-end finals?";
    let (events, sources) = answered(&api, &ann, question).await;
    assert!(!sources.is_empty());
    let answer = "The documents do not say how much prize money: none of the passages found \
                  mentions \"prize\", so I cannot answer it from the documents.";
    assert_eq!(text_of(&events), answer);
    assert_eq!(fake.state.calls("plain"), 0);
    let full = conversation_of(&api, &ann, &events).await;
    assert_eq!(full["messages"][1]["content"], answer, "{full}");

    let (events, _) = answered(&api, &ann, "How many bullfighters must work a section?").await;
    assert_ne!(text_of(&events), answer);
    assert_eq!(fake.state.calls("plain"), 1);
}
