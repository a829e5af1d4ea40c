//! One conformance suite for the SQL store, run on SQLite and on PostgreSQL (a fresh database
//! per run on the server at LARIAT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).

use base::principal::{Role, Scope, User};
use base::sql::SqlStore;
use base::types::{AnswerStatus, CollectionUpdate};
use base::{CollectionName, DocumentWrite, ErrorCode, Location, MemberRole, NewChunk, Visibility};
use chat::answer::Citation;
use chat::feedback::{Feedback, MessageRating, RatedPassage, Rating, RatingSummary};
use chat::store::{ConversationStore, ConversationSummary, Speaker, StoredMessage};
use commerce::analytics::{DayRange, UsageGroup};
use commerce::billing::{Applied, Effect, EventRecord, Invoice, PlanRule, SubscriptionRow};
use commerce::store::{AnalyticsStore, BillingStore, UsageRecord, UsageStore};
use identity::accounts::AccountStore;
use identity::accounts::sso::Identity;
use identity::accounts::sso::IdentityStore;
use identity::accounts::{ApiKeyInfo, NewUser, UserUpdate};
use identity::audit::AuditStore;
use identity::audit::{AuditCursor, AuditEntry, AuditEvent};
use identity::store::{
    IssuedToken, MailStore, QueuedMail, RefreshOutcome, Revoked, Securing, SsoState, StoredSession,
    Unlinked,
};
use knowledge::store::Store;
use lariat_tests::PgDatabase;

fn doc(collection: &str, source: &str, hash: &str, texts: &[&str]) -> DocumentWrite {
    DocumentWrite {
        collection: CollectionName::parse(collection).unwrap(),
        source: source.to_owned(),
        title: format!("Title of {source}"),
        content_hash: hash.to_owned(),
        metadata: serde_json::json!({"k": "v"}),
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, t)| NewChunk {
                text: t.to_string(),
                location: Location {
                    pages: Some((i as u32 + 1, i as u32 + 1)),
                    headings: vec!["H".into()],
                },
                token_count: 3,
                embedding: vec![i as f32, 0.5, -1.0],
            })
            .collect(),
    }
}

async fn suite(store: &dyn Store) {
    let c = CollectionName::parse("docs").unwrap();
    store.ensure_collection(&c, "m", 3).await.unwrap();
    store.ensure_collection(&c, "m", 3).await.unwrap();
    let err = store.ensure_collection(&c, "other", 3).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(err.to_string().contains("lariat reindex"), "{err}");
    let v0 = store.collection(&c).await.unwrap().unwrap().version;

    // write: pending until marked indexed
    let a = doc("docs", "/x/a.md", "h1", &["alpha one", "alpha two"]);
    let b = doc("docs", "/x/b.jsonl#7", "h2", &["beta"]);
    store
        .write_documents(&[a.clone(), b.clone()])
        .await
        .unwrap();
    let mut pending = store.pending_documents().await.unwrap();
    pending.sort();
    let mut expected = vec![a.id(), b.id()];
    expected.sort();
    assert_eq!(pending, expected);
    store.mark_indexed(&[a.id(), b.id()]).await.unwrap();
    assert!(store.pending_documents().await.unwrap().is_empty());
    let states = store
        .document_states(&[a.id(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[&a.id()].content_hash, "h1");
    assert!(states[&a.id()].indexed);
    let coll = store.collection(&c).await.unwrap().unwrap();
    assert!(coll.version > v0, "writes bump the collection version");
    assert_eq!((coll.documents, coll.chunks), (2, 3));

    // chunks round-trip with embeddings and locations, ids match DocumentWrite::chunk_ids
    let chunks = store.chunks_of_documents(&[a.id()]).await.unwrap();
    assert_eq!(chunks.len(), 2);
    let ids: Vec<String> = a.chunk_ids().iter().map(|u| u.to_string()).collect();
    assert_eq!(chunks.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(chunks[1].embedding, vec![1.0, 0.5, -1.0]);
    assert_eq!(chunks[1].location.pages, Some((2, 2)));
    assert_eq!(chunks[0].title, "Title of /x/a.md");
    let views = store
        .passages(&[ids[1].clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].text, "alpha two");
    assert_eq!(
        views[0].source, "a.md",
        "views never show the server's path (no shown name was stored: the file's name)"
    );
    let embeddings = store
        .chunk_embeddings(&[ids[1].clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(embeddings, vec![(ids[1].clone(), vec![1.0, 0.5, -1.0])]);

    // rewrite replaces all chunks, no leftovers
    let a2 = doc("docs", "/x/a.md", "h1b", &["alpha new"]);
    store
        .write_documents(std::slice::from_ref(&a2))
        .await
        .unwrap();
    let chunks = store.chunks_of_documents(&[a.id()]).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, "alpha new");
    assert_eq!(store.chunk_ids().await.unwrap().len(), 2);
    assert!(!store.document_states(&[a.id()]).await.unwrap()[&a.id()].indexed);

    // listing and lookup by source (records inside a file too)
    let docs = store.documents(Some(&c)).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs.iter().map(|d| d.chunks).sum::<i64>(), 2);
    assert_eq!(
        store.documents_by_source(None, "/x/b.jsonl").await.unwrap(),
        vec![b.id()]
    );
    assert_eq!(
        store
            .documents_by_source(Some(&c), "/x/a.md")
            .await
            .unwrap(),
        vec![a.id()]
    );
    assert!(
        store
            .documents_by_source(None, "/x/a")
            .await
            .unwrap()
            .is_empty()
    );
    let other = CollectionName::parse("elsewhere").unwrap();
    assert!(
        store
            .documents_by_source(Some(&other), "/x/a.md")
            .await
            .unwrap()
            .is_empty()
    );

    // paging through whole documents: every chunk of each, in document order; a document
    // without chunks takes no page
    let long = doc("docs", "/x/c.md", "h3", &["one", "two", "three"]);
    let empty = doc("docs", "/x/empty.md", "h0", &[]);
    store
        .write_documents(&[long.clone(), empty.clone()])
        .await
        .unwrap();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = store
            .document_chunks_page(after.as_deref(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.document_id.clone());
        pages.push(page);
    }
    let mut in_order = vec![a.id(), b.id(), long.id()];
    in_order.sort();
    assert_eq!(
        pages
            .iter()
            .map(|p| p[0].document_id.clone())
            .collect::<Vec<_>>(),
        in_order
    );
    assert!(
        pages
            .iter()
            .all(|p| p.iter().all(|c| c.document_id == p[0].document_id))
    );
    let whole = pages
        .iter()
        .find(|p| p[0].document_id == long.id())
        .unwrap();
    assert_eq!(
        whole.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        ["one", "two", "three"]
    );
    assert_eq!(store.document_chunks_page(None, 10).await.unwrap().len(), 5);
    store
        .delete_documents(&[long.id(), empty.id()])
        .await
        .unwrap();
    store
        .clear_tombstones(&[long.id(), empty.id()])
        .await
        .unwrap();

    // deletion leaves tombstones until cleared; a rewrite clears its tombstone
    assert_eq!(
        store
            .delete_documents(&[b.id(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.tombstones().await.unwrap(), vec![b.id()]);
    assert!(
        store
            .chunks_of_documents(&[b.id()])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .write_documents(std::slice::from_ref(&b))
        .await
        .unwrap();
    assert!(store.tombstones().await.unwrap().is_empty());
    store.delete_documents(&[b.id()]).await.unwrap();
    store.clear_tombstones(&[b.id()]).await.unwrap();
    assert!(store.tombstones().await.unwrap().is_empty());

    // re-embedding and rebuild bookkeeping
    let id = store.chunk_ids().await.unwrap()[0].clone();
    store
        .update_embeddings(&[(id.clone(), vec![9.0, 9.0])])
        .await
        .unwrap();
    store.set_collection_model("docs", "m2", 2).await.unwrap();
    let coll = store.collection(&c).await.unwrap().unwrap();
    assert_eq!((coll.model.as_str(), coll.dimension), ("m2", 2));
    let page = store.document_chunks_page(None, 10).await.unwrap();
    assert_eq!(
        page.iter().find(|c| c.id == id).unwrap().embedding,
        vec![9.0, 9.0]
    );
    assert_eq!(
        store
            .chunk_embeddings(std::slice::from_ref(&id))
            .await
            .unwrap(),
        vec![(id.clone(), vec![9.0, 9.0])]
    );
    store.mark_all_indexed().await.unwrap();
    assert!(store.pending_documents().await.unwrap().is_empty());
    assert_eq!(store.collections().await.unwrap().len(), 1);
}

fn user(email: &str) -> NewUser {
    NewUser {
        user: User {
            id: format!("id-{email}"),
            email: email.to_owned(),
            email_verified: false,
            role: Role::User,
            plan: "free".into(),
            disabled: false,
            created_at: 1,
        },
        password_hash: "$argon2id$fake".into(),
    }
}

fn session(id: &str, user_id: &str, expires_at: Option<i64>) -> StoredSession {
    StoredSession {
        id: id.into(),
        user_id: user_id.into(),
        user_agent: "Firefox/130".into(),
        address: "192.0.2.7".into(),
        created_at: 10,
        last_used_at: Some(10),
        expires_at,
    }
}

/// A citation of `text` in `collection`, numbered 1.
fn citation(collection: &str, text: &str) -> Citation {
    Citation {
        n: 1,
        score: 0.5,
        snippet: text.chars().take(20).collect(),
        passage: base::types::Passage {
            chunk_id: "chunk-1".into(),
            document_id: "doc-1".into(),
            collection: collection.into(),
            title: "Rules".into(),
            source: "rules.md".into(),
            location: "p. 2".into(),
            location_detail: base::types::Location {
                pages: Some((2, 2)),
                headings: Vec::new(),
            },
            text: text.into(),
        },
    }
}

fn message(role: Speaker, content: &str) -> StoredMessage {
    StoredMessage {
        id: uuid::Uuid::new_v4().to_string(),
        seq: 0,
        role,
        content: content.into(),
        citations: vec![citation("rodeo", "Eight seconds.")],
        unsupported: vec![chat::grounding::Unsupported {
            sentence: "Bulls fly [1].".into(),
            cited: vec![1],
            support: 0.25,
        }],
        standalone_query: None,
        model: Some("m".into()),
        prompt_tokens: 3,
        completion_tokens: 4,
        cost_usd: 0.25,
        latency_ms: 9,
        status: AnswerStatus::Complete,
        created_at: 5,
        rating: None,
    }
}

/// Accounts, sessions, keys, access and conversations: the same behaviour on both databases.
async fn accounts_suite(store: &SqlStore) {
    let ann = user("ann@example.com");
    store.create_user(&ann).await.unwrap();
    let err = store.create_user(&ann).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    store.create_user(&user("bob@example.com")).await.unwrap();
    let (found, hash) = store
        .user_credentials("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), hash.as_str()),
        ("id-ann@example.com", "$argon2id$fake")
    );
    assert!(
        store
            .user_credentials("nobody@x.org")
            .await
            .unwrap()
            .is_none()
    );
    let update = UserUpdate {
        role: Some(Role::Curator),
        plan: Some("pro".into()),
        disabled: Some(true),
        email_verified: Some(true),
    };
    let changed = store
        .update_user(&ann.user.id, &update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            changed.role,
            changed.plan.as_str(),
            changed.disabled,
            changed.email_verified
        ),
        (Role::Curator, "pro", true, true)
    );
    assert!(store.update_user("ghost", &update).await.unwrap().is_none());
    assert_eq!(store.users().await.unwrap().len(), 2);

    // sessions and refresh rotation
    let far = i64::MAX / 2;
    store
        .create_session(&session("s1", &ann.user.id, None), "r1", far)
        .await
        .unwrap();
    assert!(store.session_user("s1").await.unwrap().is_some());
    match store.rotate_refresh("r1", "r2", far).await.unwrap() {
        RefreshOutcome::Rotated { user, session_id } => {
            assert_eq!(
                (user.id.as_str(), session_id.as_str()),
                (ann.user.id.as_str(), "s1")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.rotate_refresh("nope", "x", far).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        store.rotate_refresh("r1", "r3", far).await.unwrap(),
        RefreshOutcome::Reused
    );
    assert!(
        store.session_user("s1").await.unwrap().is_none(),
        "reuse revokes the session"
    );
    assert_eq!(
        store.rotate_refresh("r2", "r4", far).await.unwrap(),
        RefreshOutcome::Invalid
    );
    store
        .create_session(&session("s2", &ann.user.id, None), "old", 1)
        .await
        .unwrap();
    assert_eq!(
        store.rotate_refresh("old", "x", far).await.unwrap(),
        RefreshOutcome::Invalid
    );
    store.revoke_session("s2").await.unwrap();
    assert!(store.session_user("s2").await.unwrap().is_none());

    // a session past its absolute end is over, however fresh its refresh token
    store
        .create_session(&session("s3", &ann.user.id, Some(1)), "r5", far)
        .await
        .unwrap();
    assert!(store.session_user("s3").await.unwrap().is_none());
    assert_eq!(
        store.rotate_refresh("r5", "r6", far).await.unwrap(),
        RefreshOutcome::Invalid
    );
    // listing, revoking one, all but one; a password change keeps only the session it came from
    for (id, refresh) in [("s4", "r7"), ("s5", "r8"), ("s6", "r9")] {
        store
            .create_session(&session(id, &ann.user.id, Some(far)), refresh, far)
            .await
            .unwrap();
    }
    let live = store.sessions(&ann.user.id).await.unwrap();
    let ids: Vec<&str> = live.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ["s4", "s5", "s6"].iter().all(|id| ids.contains(id)),
        "{ids:?}"
    );
    assert_eq!(live[0].user_agent, "Firefox/130");
    assert_eq!(live[0].address, "192.0.2.7");
    match store.rotate_refresh("r7", "r10", far).await.unwrap() {
        RefreshOutcome::Rotated { .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.sessions(&ann.user.id).await.unwrap()[0].id,
        "s4",
        "a renewal makes the session the most recently used"
    );
    assert!(
        !store
            .revoke_sessions("id-bob@example.com", Some("s4"), None)
            .await
            .unwrap(),
        "another user's session is not theirs to revoke"
    );
    assert!(
        store
            .revoke_sessions(&ann.user.id, Some("s4"), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_sessions(&ann.user.id, Some("s4"), None)
            .await
            .unwrap()
    );
    let change = Securing {
        password_hash: Some("$argon2id$new"),
        keep_session: Some("s5"),
        ..Securing::default()
    };
    let revoked = store
        .secure_account(&ann.user.id, &change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.keys, 0, "a password change keeps the keys");
    assert!(revoked.sessions >= 1, "{revoked:?}");
    let (_, hash) = store
        .user_credentials("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, "$argon2id$new");
    let ids: Vec<String> = store
        .sessions(&ann.user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec!["s5".to_owned()]);
    assert!(
        store
            .revoke_sessions(&ann.user.id, None, None)
            .await
            .unwrap()
    );
    assert!(store.sessions(&ann.user.id).await.unwrap().is_empty());

    // API keys
    let key = ApiKeyInfo {
        id: "k1".into(),
        name: "laptop".into(),
        prefix: "lrt_abcd1234".into(),
        scopes: vec![Scope::Search, Scope::Keys],
        created_at: 10,
        last_used_at: None,
        expires_at: None,
        parent_id: None,
    };
    store
        .create_api_key(&ann.user.id, &key, "kh")
        .await
        .unwrap();
    let (k, u) = store.api_key_user("kh").await.unwrap().unwrap();
    assert_eq!((k.id.as_str(), u.id.as_str()), ("k1", ann.user.id.as_str()));
    assert_eq!(k.scopes, [Scope::Search, Scope::Keys]);
    // a key past its end works no more
    let ended = ApiKeyInfo {
        id: "k0".into(),
        expires_at: Some(11),
        ..key.clone()
    };
    store
        .create_api_key(&ann.user.id, &ended, "kh0")
        .await
        .unwrap();
    assert!(store.api_key_user("kh0").await.unwrap().is_none());
    let future = ApiKeyInfo {
        id: "k2".into(),
        expires_at: Some(i64::MAX / 2),
        ..key.clone()
    };
    store
        .create_api_key(&ann.user.id, &future, "kh2")
        .await
        .unwrap();
    assert!(store.api_key_user("kh2").await.unwrap().is_some());
    assert!(store.revoke_api_key(&ann.user.id, "k2").await.unwrap());
    assert!(store.revoke_api_key(&ann.user.id, "k0").await.unwrap());
    store.touch_api_key("k1", 77).await.unwrap();
    assert_eq!(
        store.api_keys(&ann.user.id).await.unwrap()[0].last_used_at,
        Some(77)
    );
    assert!(
        !store
            .revoke_api_key("id-bob@example.com", "k1")
            .await
            .unwrap()
    );
    // a key made with k1, and one made with that: they go with it
    for (id, parent, hash) in [("k3", "k1", "kh3"), ("k4", "k3", "kh4")] {
        let child = ApiKeyInfo {
            id: id.into(),
            parent_id: Some(parent.into()),
            ..key.clone()
        };
        store
            .create_api_key(&ann.user.id, &child, hash)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .api_key_user("kh4")
            .await
            .unwrap()
            .unwrap()
            .0
            .parent_id,
        Some("k3".into())
    );
    assert!(store.revoke_api_key(&ann.user.id, "k1").await.unwrap());
    for hash in ["kh", "kh3", "kh4"] {
        assert!(store.api_key_user(hash).await.unwrap().is_none(), "{hash}");
    }
    assert!(store.api_keys(&ann.user.id).await.unwrap().is_empty());

    // usage
    let used = |key: Option<&str>, prompt, completion, cost, model: &str, outcome: AnswerStatus| {
        UsageRecord {
            user_id: ann.user.id.clone(),
            api_key_id: key.map(str::to_owned),
            plan: "free".into(),
            model: model.into(),
            collection: "docs".into(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_usd: cost,
            latency_ms: 40,
            outcome,
            fallback: model == "backup",
        }
    };
    store
        .record_usage(&used(
            Some("k1"),
            80,
            20,
            0.5,
            "gpt",
            AnswerStatus::Complete,
        ))
        .await
        .unwrap();
    store
        .record_usage(&used(None, 15, 5, 0.25, "backup", AnswerStatus::Error))
        .await
        .unwrap();
    // the rollups sum the same events, per group
    let today = DayRange::parse(None, None).unwrap();
    let by_model = store
        .usage_rows(Some(&ann.user.id), today, Some(UsageGroup::Model), None)
        .await
        .unwrap();
    assert_eq!(by_model.len(), 2, "{by_model:?}");
    assert_eq!(
        (
            by_model[0].key.as_str(),
            by_model[0].tokens,
            by_model[0].avg_latency_ms
        ),
        ("backup", 20, 40)
    );
    assert_eq!((by_model[0].errors, by_model[0].fallbacks), (1, 1));
    let total = store.usage_rows(None, today, None, None).await.unwrap();
    assert_eq!(total.len(), 1);
    assert_eq!(
        (total[0].messages, total[0].prompt_tokens, total[0].users),
        (2, 95, 1)
    );
    let by_day = store
        .usage_rows(Some("nobody"), today, Some(UsageGroup::Day), None)
        .await
        .unwrap();
    assert!(by_day.is_empty());
    let past = DayRange::parse(Some("2020-01-01"), Some("2020-01-02")).unwrap();
    assert!(
        store
            .usage_rows(None, past, None, None)
            .await
            .unwrap()
            .is_empty()
    );
    // from the daily rollups (whole days after the first), and from the events of the first day
    let midnight = base::now_ms().div_euclid(86_400_000) * 86_400_000;
    for since in [0, midnight] {
        let totals = store.usage_since(&ann.user.id, since).await.unwrap();
        assert_eq!((totals.messages, totals.tokens), (2, 120), "since {since}");
        assert!((totals.cost_usd - 0.75).abs() < 1e-9);
    }
    let days = store.usage_by_day(&ann.user.id, 0).await.unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!((days[0].messages, days[0].tokens), (2, 120));
    assert_eq!(days[0].day % 86_400_000, 0, "a day starts at midnight UTC");
    assert!(days[0].day <= base::now_ms() && base::now_ms() - days[0].day < 86_400_000);
    assert!(
        store
            .usage_by_day(&ann.user.id, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    let none = store.usage_since(&ann.user.id, i64::MAX).await.unwrap();

    // single-use tokens: by purpose, unexpired, used once
    let token = |hash: &str, expires_at| IssuedToken {
        hash: hash.into(),
        user_id: ann.user.id.clone(),
        purpose: "reset",
        payload: "ann@example.com".into(),
        expires_at,
    };
    store
        .create_token(&token("t1", i64::MAX / 2))
        .await
        .unwrap();
    store.create_token(&token("t2", 1)).await.unwrap();
    let (holder, payload) = store.token_user("t1", "reset").await.unwrap().unwrap();
    assert_eq!(
        (holder.id.as_str(), payload.as_str()),
        (ann.user.id.as_str(), "ann@example.com")
    );
    assert!(store.token_user("t1", "verify").await.unwrap().is_none());
    assert!(
        store.token_user("t2", "reset").await.unwrap().is_none(),
        "expired"
    );
    assert!(!store.consume_token("t2", "reset").await.unwrap());
    assert!(!store.consume_token("t1", "verify").await.unwrap());
    assert!(store.consume_token("t1", "reset").await.unwrap());
    assert!(
        !store.consume_token("t1", "reset").await.unwrap(),
        "used once"
    );
    assert!(store.token_user("t1", "reset").await.unwrap().is_none());

    // addresses: verified only while unchanged (and then nothing else changes either); the
    // proof removes what was asked, and spends every outstanding reset and address link
    let bob = user("bob@example.com");
    let proof = |email| Securing {
        password_hash: Some("$argon2id$bob"),
        verify: Some(email),
        revoke_keys: true,
        remove_identities: true,
        ..Securing::default()
    };
    let bob_key = ApiKeyInfo {
        id: "kb".into(),
        name: "bob's".into(),
        prefix: "lrt_bbbb1234".into(),
        scopes: vec![Scope::Search],
        created_at: 10,
        last_used_at: None,
        expires_at: None,
        parent_id: None,
    };
    store
        .create_api_key(&bob.user.id, &bob_key, "khb")
        .await
        .unwrap();
    store
        .link_identity(&Identity {
            id: "ib".into(),
            user_id: bob.user.id.clone(),
            provider: "test".into(),
            issuer: "https://id.example".into(),
            subject: "bob".into(),
            email: "bob@example.com".into(),
            created_at: 5,
            last_used_at: None,
        })
        .await
        .unwrap();
    let link = |hash: &str, purpose: &'static str| IssuedToken {
        hash: hash.into(),
        user_id: bob.user.id.clone(),
        purpose,
        payload: "bob@example.com".into(),
        expires_at: i64::MAX / 2,
    };
    for (hash, purpose) in [("br", "reset"), ("be", "email"), ("bv", "verify")] {
        store.create_token(&link(hash, purpose)).await.unwrap();
    }
    assert_eq!(
        store
            .secure_account(&bob.user.id, &proof("old@example.com"))
            .await
            .unwrap(),
        None
    );
    assert!(store.api_key_user("khb").await.unwrap().is_some());
    assert!(store.token_user("br", "reset").await.unwrap().is_some());
    assert!(
        !store
            .user(&bob.user.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    let revoked = store
        .secure_account(&bob.user.id, &proof("bob@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked,
        Revoked {
            sessions: 0,
            keys: 1,
            identities: vec!["test".into()]
        }
    );
    assert!(
        store
            .user(&bob.user.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert!(store.api_key_user("khb").await.unwrap().is_none());
    assert!(store.identities(&bob.user.id).await.unwrap().is_empty());
    for (hash, purpose) in [("br", "reset"), ("be", "email")] {
        assert!(
            store.token_user(hash, purpose).await.unwrap().is_none(),
            "{purpose} link outlived the change"
        );
    }
    assert!(store.token_user("bv", "verify").await.unwrap().is_some());
    // a change of address, a link or an unlink spends them too
    store.create_token(&link("br2", "reset")).await.unwrap();
    let taken = store
        .change_email(&bob.user.id, "ann@example.com")
        .await
        .unwrap_err();
    assert_eq!(taken.code(), ErrorCode::Conflict);
    store
        .change_email(&bob.user.id, "robert@example.com")
        .await
        .unwrap();
    assert!(store.token_user("br2", "reset").await.unwrap().is_none());
    let moved = store.user(&bob.user.id).await.unwrap().unwrap();
    assert_eq!(
        (moved.email.as_str(), moved.email_verified),
        ("robert@example.com", true)
    );
    store
        .change_email(&bob.user.id, "bob@example.com")
        .await
        .unwrap();

    // the mail outbox: due, claimed by one sender, retried, sent
    let queued = QueuedMail {
        id: "m1".into(),
        user_id: Some(ann.user.id.clone()),
        recipient: "ann@example.com".into(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "<p>t</p>".into(),
        attempts: 0,
        next_attempt_at: 5,
    };
    store.enqueue_mail(&queued).await.unwrap();
    assert!(store.due_mail(4, 10).await.unwrap().is_empty());
    let due = store.due_mail(5, 10).await.unwrap();
    assert_eq!(due, vec![queued.clone()]);
    assert!(store.claim_mail(&due[0], 1_000).await.unwrap());
    assert!(
        !store.claim_mail(&due[0], 1_000).await.unwrap(),
        "claimed once"
    );
    assert!(store.due_mail(999, 10).await.unwrap().is_empty(), "leased");
    store.mail_failed("m1", "421", Some(2_000)).await.unwrap();
    let again = store.due_mail(2_000, 10).await.unwrap();
    assert_eq!((again[0].attempts, again[0].next_attempt_at), (1, 2_000));
    store.mail_sent("m1").await.unwrap();
    assert!(store.due_mail(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!((none.messages, none.tokens, none.cost_usd), (0, 0, 0.0));

    // access to collections
    let open = CollectionName::parse("open").unwrap();
    let closed = CollectionName::parse("closed").unwrap();
    store.ensure_collection(&open, "m", 3).await.unwrap();
    store.ensure_collection(&closed, "m", 3).await.unwrap();
    let private = CollectionUpdate {
        visibility: Some(Visibility::Private),
        ..Default::default()
    };
    store.update_collection("closed", &private).await.unwrap();
    let names = |v: Vec<knowledge::store::CollectionHead>| -> Vec<String> {
        v.into_iter().map(|c| c.name).collect()
    };
    let bob_reads = names(
        store
            .readable_collections(Some("id-bob@example.com"))
            .await
            .unwrap(),
    );
    assert!(bob_reads.contains(&"open".to_owned()) && !bob_reads.contains(&"closed".to_owned()));
    assert!(names(store.readable_collections(None).await.unwrap()).contains(&"closed".to_owned()));
    store
        .set_member("closed", "id-bob@example.com", Some(MemberRole::Reader))
        .await
        .unwrap();
    store
        .set_member("closed", "id-bob@example.com", Some(MemberRole::Curator))
        .await
        .unwrap();
    assert_eq!(
        store
            .member_role("closed", "id-bob@example.com")
            .await
            .unwrap(),
        Some(MemberRole::Curator)
    );
    let members = store.members("closed").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id.as_str(), members[0].role),
        ("id-bob@example.com", MemberRole::Curator)
    );
    assert!(members[0].email.contains("bob"), "{members:?}");
    assert!(store.members("open").await.unwrap().is_empty());
    assert!(
        names(
            store
                .readable_collections(Some("id-bob@example.com"))
                .await
                .unwrap()
        )
        .contains(&"closed".to_owned())
    );
    store
        .set_member("closed", "id-bob@example.com", None)
        .await
        .unwrap();
    assert_eq!(
        store
            .member_role("closed", "id-bob@example.com")
            .await
            .unwrap(),
        None
    );
    let settings = CollectionUpdate {
        instructions: Some("Answer like a cowboy.".into()),
        conversation_retention_days: Some(30),
        ..Default::default()
    };
    store.update_collection("closed", &settings).await.unwrap();
    assert_eq!(
        store.instructions("closed").await.unwrap(),
        "Answer like a cowboy."
    );
    // what the update left out is kept
    let closed_now = store.collection(&closed).await.unwrap().unwrap();
    assert_eq!(
        (
            closed_now.visibility,
            closed_now.conversation_retention_days
        ),
        (Visibility::Private, 30)
    );
    assert_eq!(store.instructions("nope").await.unwrap(), "");

    // conversations
    for (i, title) in ["Rope lengths", "100% effort_check", "Barrels"]
        .iter()
        .enumerate()
    {
        let c = ConversationSummary {
            id: format!("c{i}"),
            title: title.to_string(),
            collections: vec!["open".into()],
            created_at: i as i64,
            updated_at: i as i64,
        };
        store.create_conversation(&ann.user.id, &c).await.unwrap();
    }
    store
        .append_messages(
            "c0",
            &[
                message(Speaker::User, "How long is a heel rope?"),
                message(Speaker::Assistant, "35 ft"),
            ],
        )
        .await
        .unwrap();
    store
        .append_messages("c0", &[message(Speaker::User, "and heading?")])
        .await
        .unwrap();
    let msgs = store.messages("c0").await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        msgs[1].citations,
        [citation("rodeo", "Eight seconds.")],
        "citations read back as the chat produced them"
    );
    assert_eq!(msgs[1].cost_usd, 0.25);
    assert_eq!(
        store.message("c0", &msgs[1].id).await.unwrap().as_ref(),
        Some(&msgs[1]),
        "one message reads back as the whole conversation holds it"
    );
    assert_eq!(store.message("c0", "missing").await.unwrap(), None);
    assert_eq!(
        store.message("c1", &msgs[1].id).await.unwrap(),
        None,
        "a message is found only in its own conversation"
    );
    // a row from before citations were versioned: a bare array, fields missing
    sqlx::query("UPDATE messages SET citations = $1 WHERE id = $2")
        .bind(r#"[{"n":3,"title":"Old rules","chunk_id":"c9","location":"p. 4"}]"#)
        .bind(&msgs[2].id)
        .execute(&store.pool)
        .await
        .unwrap();
    let old = store.message("c0", &msgs[2].id).await.unwrap().unwrap();
    assert_eq!(
        (old.citations.len(), old.citations[0].n),
        (1, 3),
        "an unversioned row still reads"
    );
    assert_eq!(old.citations[0].passage.title, "Old rules");
    assert_eq!(old.citations[0].passage.text, "");
    // and a version this build does not know is an error, not an answer without its sources
    sqlx::query("UPDATE messages SET citations = $1 WHERE id = $2")
        .bind(r#"{"version":9,"citations":[]}"#)
        .bind(&msgs[2].id)
        .execute(&store.pool)
        .await
        .unwrap();
    let newer = store.message("c0", &msgs[2].id).await.unwrap_err();
    assert_eq!(newer.code(), ErrorCode::Internal, "{newer}");
    let list = store.conversations(&ann.user.id, 2, 0).await.unwrap();
    assert_eq!(
        list[0].id, "c0",
        "the conversation just written to comes first"
    );
    assert_eq!(list.len(), 2);
    assert_eq!(
        store
            .conversations(&ann.user.id, 10, 2)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .conversations("id-bob@example.com", 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .conversation("id-bob@example.com", "c0")
            .await
            .unwrap()
            .is_none()
    );
    let hits = store
        .search_conversations(&ann.user.id, "HEEL", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    let hits = store
        .search_conversations(&ann.user.id, "100%", 10)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );
    let hits = store
        .search_conversations(&ann.user.id, "t_c", 10)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );
    assert!(
        store
            .search_conversations(&ann.user.id, "%", 10)
            .await
            .unwrap()
            .len()
            == 1
    );
    assert!(
        store
            .search_conversations("id-bob@example.com", "heel", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .rename_conversation("id-bob@example.com", "c0", "x")
            .await
            .unwrap()
    );
    assert!(
        store
            .rename_conversation(&ann.user.id, "c0", "Ropes")
            .await
            .unwrap()
    );
    // search ignores case in every script, on both databases
    assert!(
        store
            .rename_conversation(&ann.user.id, "c2", "ÉCLAIR Ёлка ΣΊΣΥΦΟΣ")
            .await
            .unwrap()
    );
    store
        .append_messages("c1", &[message(Speaker::User, "Über die GRÖSSE der Arena")])
        .await
        .unwrap();
    for (query, id) in [
        ("éclair", "c2"),
        ("ёлка", "c2"),
        ("σίσυφος", "c2"),
        ("über", "c1"),
    ] {
        let hits = store
            .search_conversations(&ann.user.id, query, 10)
            .await
            .unwrap();
        assert_eq!(
            hits.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [id],
            "{query}"
        );
    }
    // two answers stored into one conversation at the same moment get distinct numbers
    let (one, two) = (
        [message(Speaker::Assistant, "one")],
        [message(Speaker::Assistant, "two")],
    );
    let (a, b) = tokio::join!(
        store.append_messages("c1", &one),
        store.append_messages("c1", &two)
    );
    a.unwrap();
    b.unwrap();
    let seqs: Vec<i64> = store
        .messages("c1")
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let gone = store
        .append_messages("no-such-conversation", &[message(Speaker::User, "x")])
        .await
        .unwrap_err();
    assert_eq!(gone.code(), base::ErrorCode::NotFound);
    assert!(
        !store
            .delete_conversation("id-bob@example.com", "c0")
            .await
            .unwrap()
    );
    assert!(store.delete_conversation(&ann.user.id, "c0").await.unwrap());
    assert!(store.messages("c0").await.unwrap().is_empty());
    assert!(
        store
            .conversation(&ann.user.id, "c0")
            .await
            .unwrap()
            .is_none()
    );
}

/// Site writes: a key is claimed once; a second claim sees the first; released claims may be
/// claimed again; outcomes are kept.
async fn site_actions_suite(store: &SqlStore) {
    use sites::store::{ActionStatus, SiteAction, SiteActionStore};
    let action = |key: &str| SiteAction {
        key: key.into(),
        site: "rodeo".into(),
        user_id: "u1".into(),
        action: "submit_entry".into(),
        request: serde_json::json!({"event_id": "reno-2027"}),
        status: ActionStatus::Pending,
        outcome: None,
        created_at: 0,
        finished_at: None,
    };
    assert!(
        store
            .claim_site_action(&action("k1"))
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .claim_site_action(&action("k1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, ActionStatus::Pending);
    assert_eq!(again.request["event_id"], "reno-2027");
    store
        .finish_site_action(
            "k1",
            ActionStatus::Done,
            &serde_json::json!({"confirmation": "E1"}),
        )
        .await
        .unwrap();
    // a finished action is not released
    store.release_site_action("k1").await.unwrap();
    let done = store
        .claim_site_action(&action("k1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ActionStatus::Done);
    assert_eq!(done.outcome.unwrap()["confirmation"], "E1");
    assert!(done.finished_at.is_some());
    // a pending one is, and can be claimed anew
    assert!(
        store
            .claim_site_action(&action("k2"))
            .await
            .unwrap()
            .is_none()
    );
    store.release_site_action("k2").await.unwrap();
    assert!(
        store
            .claim_site_action(&action("k2"))
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.site_actions("u1", "rodeo").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(store.site_actions("u2", "rodeo").await.unwrap().is_empty());
}

/// The audit log: written, read newest first by event and user a page at a time, purged.
async fn audit_suite(store: &SqlStore) {
    let entry = |id: &str, at: i64, event: AuditEvent, subject: &str| AuditEntry {
        id: id.into(),
        at,
        event,
        actor_id: Some("admin".into()),
        subject_id: Some(subject.into()),
        address: "192.0.2.1".into(),
        detail: serde_json::json!({"n": id}),
    };
    for e in [
        entry("a", 100, AuditEvent::SignedIn, "ann"),
        entry("b", 200, AuditEvent::SignInFailed, "ann"),
        entry("c", 200, AuditEvent::SignedIn, "bob"),
        entry("d", 300, AuditEvent::KeyCreated, "ann"),
    ] {
        store.record_audit(&e).await.unwrap();
    }
    let ids = |entries: Vec<AuditEntry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = store.audit_entries(None, None, None, 10).await.unwrap();
    assert_eq!(all[0], entry("d", 300, AuditEvent::KeyCreated, "ann"));
    assert_eq!(ids(all), ["d", "c", "b", "a"]);
    // a cursor inside a millisecond shared by two entries loses neither
    let cursor = AuditCursor {
        at: 200,
        id: "c".into(),
    };
    let rest = store
        .audit_entries(None, None, Some(&cursor), 10)
        .await
        .unwrap();
    assert_eq!(ids(rest), ["b", "a"]);
    let signed_in = store
        .audit_entries(Some(AuditEvent::SignedIn), None, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(signed_in), ["c", "a"]);
    let bob = store
        .audit_entries(None, Some("bob"), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(bob), ["c"]);
    let by_admin = store
        .audit_entries(None, Some("admin"), None, 1)
        .await
        .unwrap();
    assert_eq!(ids(by_admin), ["d"]);
    assert_eq!(store.purge_audit(200).await.unwrap(), 1);
    let left = store.audit_entries(None, None, None, 10).await.unwrap();
    assert_eq!(ids(left), ["d", "c", "b"]);
}

/// Identities and single sign-ons in progress: states taken once, identities unique by issuer
/// and subject, and the last way into an account never unlinked.
async fn identity_suite(store: &SqlStore) {
    let state = |hash: &str, expires_at: i64| SsoState {
        state_hash: hash.into(),
        provider: "google".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        user_id: None,
        next_path: "/chat".into(),
        created_at: 1,
        expires_at,
    };
    let live = state("live", i64::MAX);
    store.save_sso_state(&live).await.unwrap();
    store.save_sso_state(&state("stale", 2)).await.unwrap();
    // a new attempt clears the expired ones
    store
        .save_sso_state(&state("newer", i64::MAX))
        .await
        .unwrap();
    assert_eq!(store.take_sso_state("stale").await.unwrap(), None);
    assert_eq!(store.take_sso_state("live").await.unwrap(), Some(live));
    assert_eq!(store.take_sso_state("live").await.unwrap(), None);

    let identity = |id: &str, user_id: &str, subject: &str| Identity {
        id: id.into(),
        user_id: user_id.into(),
        provider: "google".into(),
        issuer: "https://accounts.google.com".into(),
        subject: subject.into(),
        email: format!("{subject}@example.com"),
        created_at: 5,
        last_used_at: None,
    };
    // an account opened by sign-on, without a password, with its identity, both or neither
    let mut gil = user("gil@example.com");
    gil.password_hash = "!sso".into();
    store
        .create_user_with_identity(&gil, &identity("i1", &gil.user.id, "gil"))
        .await
        .unwrap();
    let mut twin = user("gil.twin@example.com");
    twin.password_hash = "!sso".into();
    let err = store
        .create_user_with_identity(&twin, &identity("i2", &twin.user.id, "gil"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(store.user(&twin.user.id).await.unwrap().is_none());
    let found = store
        .identity("https://accounts.google.com", "gil")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, identity("i1", &gil.user.id, "gil"));
    store
        .touch_identity("i1", "gil@new.example", 9)
        .await
        .unwrap();
    let listed = store.identities(&gil.user.id).await.unwrap();
    assert_eq!(
        (listed[0].email.as_str(), listed[0].last_used_at),
        ("gil@new.example", Some(9))
    );
    // the only way in stays; with a second identity either may go, then not the last
    assert_eq!(
        store.unlink_identity(&gil.user.id, "i1").await.unwrap(),
        Unlinked::LastWayIn
    );
    store
        .link_identity(&identity("i3", &gil.user.id, "gil-work"))
        .await
        .unwrap();
    let err = store
        .link_identity(&identity("i4", "id-ann@example.com", "gil-work"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(
        store
            .unlink_identity("id-ann@example.com", "i3")
            .await
            .unwrap(),
        Unlinked::NotFound
    );
    assert_eq!(
        store.unlink_identity(&gil.user.id, "i1").await.unwrap(),
        Unlinked::Done
    );
    assert_eq!(
        store.unlink_identity(&gil.user.id, "i3").await.unwrap(),
        Unlinked::LastWayIn
    );
    // an account with a password may unlink its every identity
    store
        .link_identity(&identity("i5", "id-ann@example.com", "ann"))
        .await
        .unwrap();
    assert_eq!(
        store
            .unlink_identity("id-ann@example.com", "i5")
            .await
            .unwrap(),
        Unlinked::Done
    );
    assert!(
        store
            .identities("id-ann@example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn billing_suite(store: &SqlStore) {
    store.create_user(&user("payer@example.com")).await.unwrap();
    let uid = "id-payer@example.com";
    assert_eq!(store.billing_customer(uid).await.unwrap(), None);
    store.link_billing_customer(uid, "cus_1").await.unwrap();
    // a user keeps the first customer linked
    store.link_billing_customer(uid, "cus_2").await.unwrap();
    assert_eq!(
        store.billing_customer(uid).await.unwrap().as_deref(),
        Some("cus_1")
    );
    assert_eq!(
        store
            .billing_customer_user("cus_1")
            .await
            .unwrap()
            .as_deref(),
        Some(uid)
    );
    assert_eq!(store.billing_customer_user("cus_2").await.unwrap(), None);

    let rule = |now| PlanRule {
        free_plan: "free".into(),
        grace_ms: 1_000,
        now,
    };
    let now = base::now_ms();
    let row = |status: &str, at: i64| SubscriptionRow {
        id: "sub_1".into(),
        user_id: uid.into(),
        customer_id: "cus_1".into(),
        status: status.into(),
        price_id: "price_pro".into(),
        plan: "pro".into(),
        interval: "month".into(),
        current_period_end: Some(now + 86_400_000),
        cancel_at_period_end: false,
        past_due_since: (status == "past_due").then_some(now),
        last_event_at: at,
        applied_plan: String::new(),
    };
    let ev = |id: &str, created| EventRecord {
        id: id.into(),
        kind: "customer.subscription.updated".into(),
        created,
    };
    let plan = || async { store.user(uid).await.unwrap().unwrap().plan };
    let apply = |id: &'static str, status: &'static str, at: i64| {
        let effect = Effect::Subscription(row(status, at));
        async move {
            store
                .apply_billing_event(&ev(id, at), &effect, &rule(now))
                .await
                .unwrap()
        }
    };
    assert_eq!(apply("evt_1", "active", 10).await, Applied::Applied);
    assert_eq!(plan().await, "pro");
    assert_eq!(apply("evt_1", "canceled", 99).await, Applied::Duplicate);
    assert_eq!(apply("evt_2", "incomplete", 9).await, Applied::Stale);
    assert_eq!(plan().await, "pro");
    assert_eq!(store.subscription_stamp("sub_1").await.unwrap(), Some(10));
    // past due: the first day it became so is kept while it stays so
    assert_eq!(apply("evt_3", "past_due", 11).await, Applied::Applied);
    let since = store.subscriptions(uid).await.unwrap()[0].past_due_since;
    assert_eq!(since, Some(now));
    assert_eq!(plan().await, "pro", "in its grace");
    // time passes: the grace runs out, the sweep applies it once
    assert_eq!(store.refresh_plans(&rule(now + 5_000)).await.unwrap(), 1);
    assert_eq!(plan().await, "free");
    assert_eq!(store.refresh_plans(&rule(now + 6_000)).await.unwrap(), 0);
    // an admin's choice is not undone by a sweep with nothing new to apply
    store
        .update_user(
            uid,
            &UserUpdate {
                plan: Some("team".into()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.refresh_plans(&rule(now + 7_000)).await.unwrap(), 0);
    assert_eq!(plan().await, "team");
    assert_eq!(apply("evt_4", "active", 12).await, Applied::Applied);
    assert_eq!(plan().await, "pro");

    // invoices: a payment made is final
    let invoice = |status: &str| Invoice {
        id: "in_1".into(),
        user_id: uid.into(),
        subscription_id: "sub_1".into(),
        status: status.into(),
        plan: "pro".into(),
        amount_due: 2900,
        amount_paid: if status == "paid" { 2900 } else { 0 },
        currency: "usd".into(),
        hosted_invoice_url: "https://invoice.stripe.com/i/acct_1/test_1".into(),
        created: now,
    };
    let inv = |id: &'static str, status: &'static str| {
        let effect = Effect::Invoice(invoice(status));
        async move {
            store
                .apply_billing_event(&ev(id, 20), &effect, &rule(now))
                .await
                .unwrap()
        }
    };
    assert_eq!(inv("evt_5", "payment_failed").await, Applied::Applied);
    assert_eq!(
        store.invoices(uid, 5).await.unwrap()[0].status,
        "payment_failed"
    );
    assert_eq!(inv("evt_6", "paid").await, Applied::Applied);
    assert_eq!(inv("evt_7", "payment_failed").await, Applied::Applied);
    let invoices = store.invoices(uid, 5).await.unwrap();
    assert_eq!((invoices.len(), invoices[0].status.as_str()), (1, "paid"));
    let today = DayRange::parse(None, None).unwrap();
    let revenue = store.revenue_rows(today, UsageGroup::Plan).await.unwrap();
    assert_eq!(revenue.len(), 1);
    assert_eq!(
        (
            revenue[0].key.as_str(),
            revenue[0].amount,
            revenue[0].invoices
        ),
        ("pro", 2900, 1)
    );
    let nothing = Effect::Nothing("not ours".into());
    let outcome = store
        .apply_billing_event(&ev("evt_8", 1), &nothing, &rule(now))
        .await
        .unwrap();
    assert_eq!(outcome, Applied::Ignored);
    let outcome = store
        .apply_billing_event(&ev("evt_8", 1), &nothing, &rule(now))
        .await
        .unwrap();
    assert_eq!(outcome, Applied::Duplicate);

    // erased: the payment link, the subscriptions, the site actions and every mail about the
    // user go (one to an address it no longer has too); the invoice stays for the books, without
    // Stripe's page
    use operations::store::PrivacyStore;
    use sites::store::{ActionStatus, SiteAction, SiteActionStore};
    store
        .claim_site_action(&SiteAction {
            key: "payer-entry".into(),
            site: "rodeo".into(),
            user_id: uid.into(),
            action: "submit_entry".into(),
            request: serde_json::json!({"partner": "Jo Partner"}),
            status: ActionStatus::Pending,
            outcome: None,
            created_at: 0,
            finished_at: None,
        })
        .await
        .unwrap();
    store
        .enqueue_mail(&QueuedMail {
            id: "m-old-address".into(),
            user_id: Some(uid.into()),
            recipient: "payer.old@example.com".into(),
            subject: "s".into(),
            text_body: "t".into(),
            html_body: "h".into(),
            attempts: 0,
            next_attempt_at: 0,
        })
        .await
        .unwrap();
    store
        .erase_user(uid, "erased@erased.invalid")
        .await
        .unwrap();
    assert_eq!(store.billing_customer(uid).await.unwrap(), None);
    assert!(store.subscriptions(uid).await.unwrap().is_empty());
    assert!(store.site_actions(uid, "rodeo").await.unwrap().is_empty());
    assert!(
        !store
            .due_mail(i64::MAX, 100)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == "m-old-address")
    );
    let kept = store.invoices(uid, 5).await.unwrap();
    assert_eq!((kept.len(), kept[0].hosted_invoice_url.as_str()), (1, ""));
}

/// Sources and their items (the suite's collection `docs` exists).
async fn sources_suite(store: &SqlStore) {
    use operations::sources::{Source, SourceKind};
    use operations::store::{SourceItem, SourceStore};
    let mut source = Source {
        id: "s1".into(),
        collection: "docs".into(),
        kind: SourceKind::Urls,
        targets: vec![
            "https://example.org/a".into(),
            "https://example.org/b".into(),
        ],
        schedule: "0 * * * *".into(),
        max_misses: 3,
        created_by: "cat@example.com".into(),
        created_at: 1,
        updated_at: 1,
    };
    store.insert_source(&source).await.unwrap();
    // a source of a collection that does not exist is refused
    let orphan = Source {
        id: "s2".into(),
        collection: "nope".into(),
        ..source.clone()
    };
    assert!(store.insert_source(&orphan).await.is_err());
    let stored = store.source("s1").await.unwrap().unwrap();
    assert_eq!((stored.kind, stored.targets.len()), (SourceKind::Urls, 2));
    assert_eq!(store.sources(Some("docs")).await.unwrap().len(), 1);
    assert!(store.sources(Some("other")).await.unwrap().is_empty());
    source.schedule = "*/5 * * * *".into();
    source.max_misses = 7;
    assert!(store.update_source(&source).await.unwrap());
    assert_eq!(store.source("s1").await.unwrap().unwrap().max_misses, 7);
    let item = |name: &str, misses: u32| SourceItem {
        item: name.into(),
        document_source: name.into(),
        etag: Some("\"v1\"".into()),
        last_modified: None,
        misses,
        seen_at: 5,
    };
    let items = vec![
        item("https://example.org/a", 0),
        item("https://example.org/b", 2),
    ];
    assert!(store.save_source_items("s1", &items).await.unwrap());
    assert_eq!(store.source_items("s1").await.unwrap(), items);
    // saving replaces the whole set
    assert!(store.save_source_items("s1", &items[..1]).await.unwrap());
    assert_eq!(store.source_items("s1").await.unwrap().len(), 1);
    assert!(store.delete_source("s1").await.unwrap());
    assert!(!store.delete_source("s1").await.unwrap());
    assert!(store.source_items("s1").await.unwrap().is_empty());
    // a sync that outlived its source writes nothing
    assert!(!store.save_source_items("s1", &items).await.unwrap());
    assert!(store.source_items("s1").await.unwrap().is_empty());
}

/// Retention: conversations go by their owner's plan, or by a collection they are limited to or
/// cite, once untouched long enough; nothing else goes.
async fn retention_suite(store: &SqlStore) {
    use operations::store::RetentionStore;
    // the answer cache's epoch: 0 until moved, then one more per move, even moves racing
    assert_eq!(store.answer_cache_epoch().await.unwrap(), 0);
    assert_eq!(store.move_answer_cache_epoch().await.unwrap(), 1);
    let moves = futures::future::join_all((0..5).map(|_| store.move_answer_cache_epoch())).await;
    let mut moved: Vec<i64> = moves.into_iter().map(Result::unwrap).collect();
    moved.sort();
    assert_eq!(moved, [2, 3, 4, 5, 6]);
    assert_eq!(store.answer_cache_epoch().await.unwrap(), 6);
    let mut team_user = user("rita@example.com");
    team_user.user.plan = "team".into();
    store.create_user(&team_user).await.unwrap();
    let rita = "id-rita@example.com";
    let cited = |collection: &str, text: &str| StoredMessage {
        citations: vec![citation(collection, text)],
        ..message(Speaker::Assistant, "Eight seconds [1].")
    };
    // (id, scope, what its answer cites)
    let conversations: [(&str, &[&str], Option<StoredMessage>); 6] = [
        ("scoped", &["rodeo_x"], None),
        ("citing", &[], Some(cited("rodeo_x", "eight seconds"))),
        // with `_` unescaped, the pattern would match this other collection
        ("lookalike", &["rodeoax"], Some(cited("rodeoax", "x"))),
        ("longer-name", &["rodeo_x2"], Some(cited("rodeo_x2", "x"))),
        // a passage quoting the JSON of a citation is not a citation
        (
            "quoting",
            &["other"],
            Some(cited("other", r#"{"collection":"rodeo_x"} and "rodeo_x""#)),
        ),
        ("recent", &["rodeo_x"], None),
    ];
    for (id, scope, answer) in &conversations {
        let summary = ConversationSummary {
            id: (*id).into(),
            title: (*id).into(),
            collections: scope.iter().map(|c| c.to_string()).collect(),
            created_at: 1,
            updated_at: if *id == "recent" { i64::MAX / 2 } else { 1 },
        };
        store.create_conversation(rita, &summary).await.unwrap();
        if let Some(answer) = answer {
            store
                .append_messages(id, std::slice::from_ref(answer))
                .await
                .unwrap();
        }
    }
    let ids = async || -> Vec<String> {
        let mut ids: Vec<String> = store
            .conversations(rita, 100, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    let before = base::types::now_ms() + 60_000;
    assert_eq!(
        store
            .purge_conversations_of("rodeo_x", before)
            .await
            .unwrap(),
        (2, vec![rita.to_owned()])
    );
    assert_eq!(
        ids().await,
        ["longer-name", "lookalike", "quoting", "recent"]
    );
    assert!(store.messages("citing").await.unwrap().is_empty());
    assert_eq!(store.messages("quoting").await.unwrap().len(), 1);
    // nothing is old enough for a collection's shorter clock
    assert_eq!(
        store.purge_conversations_of("rodeoax", 0).await.unwrap(),
        (0, vec![])
    );
    // another plan's retention leaves rita's alone; her own takes all but the recent one
    assert_eq!(
        store.purge_conversations("nobodys", before).await.unwrap(),
        (0, vec![])
    );
    assert_eq!(
        store.purge_conversations("team", before).await.unwrap(),
        (3, vec![rita.to_owned()])
    );
    assert_eq!(ids().await, ["recent"]);

    // the outbox keeps a sent or given-up message's envelope a while, never a waiting one
    let waiting = QueuedMail {
        id: "m-waiting".into(),
        user_id: None,
        recipient: "rita@example.com".into(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "<p>t</p>".into(),
        attempts: 0,
        next_attempt_at: i64::MAX / 2,
    };
    store.enqueue_mail(&waiting).await.unwrap();
    let later = base::types::now_ms() + operations::store::MAIL_KEPT_MS + 60_000;
    assert_eq!(
        store
            .purge_expired(now_ms_minus_a_day())
            .await
            .unwrap()
            .mail,
        0
    );
    assert!(
        store.purge_expired(later).await.unwrap().mail >= 1,
        "m1 was sent"
    );
    assert_eq!(store.due_mail(i64::MAX, 10).await.unwrap(), vec![waiting]);
}

fn now_ms_minus_a_day() -> i64 {
    base::types::now_ms() - 86_400_000
}

/// Ratings of answers: kept with what was rated, replaced, summarised per collection and model,
/// listed by collection, taken back only by their owner, and gone with their conversation.
async fn feedback_suite(store: &SqlStore) {
    let fay = user("fay@example.com");
    store.create_user(&fay).await.unwrap();
    let fay_id = fay.user.id.clone();
    let summary = |id: &str| ConversationSummary {
        id: id.into(),
        title: "Ropes".into(),
        collections: vec![],
        created_at: 1,
        updated_at: 1,
    };
    let mut answers = Vec::new();
    for c in ["fc1", "fc2"] {
        store
            .create_conversation(&fay_id, &summary(c))
            .await
            .unwrap();
        let (q, a) = (
            message(Speaker::User, "How long is a heel rope?"),
            message(Speaker::Assistant, "35 to 40 feet [1]."),
        );
        store.append_messages(c, &[q, a.clone()]).await.unwrap();
        answers.push(a.id);
    }
    let passage = |n: usize, collection: &str| RatedPassage {
        n,
        chunk_id: format!("chunk-{n}"),
        document_id: format!("doc-{n}"),
        collection: collection.into(),
    };
    let rated = |i: usize, rating: Rating, comment: &str, at: i64| Feedback {
        message_id: answers[i].clone(),
        conversation_id: format!("fc{}", i + 1),
        user_id: fay_id.clone(),
        given: MessageRating {
            rating,
            comment: comment.into(),
        },
        question: "How long is a heel rope?".into(),
        model: "m".into(),
        passages: vec![
            passage(2, "rodeo"),
            passage(1, "rodeo"),
            passage(3, "rules"),
        ],
        created_at: at,
        updated_at: at,
    };
    store.rate(&rated(0, Rating::Down, "", 10)).await.unwrap();
    // rated again: the rating and comment replaced, the first time kept
    store
        .rate(&rated(0, Rating::Up, "spot on", 20))
        .await
        .unwrap();
    store.rate(&rated(1, Rating::Down, "", 30)).await.unwrap();
    let all = store.ratings(&[]).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[0].given.rating,
            all[0].given.comment.as_str(),
            all[0].created_at,
            all[0].updated_at
        ),
        (Rating::Up, "spot on", 10, 20)
    );
    assert_eq!(
        all[0].passages.iter().map(|p| p.n).collect::<Vec<_>>(),
        [1, 2, 3],
        "in citation order"
    );
    assert_eq!(all[0].passages[0], passage(1, "rodeo"));
    assert_eq!(all[1].given.rating, Rating::Down);
    assert_eq!(store.ratings(&["rules".into()]).await.unwrap().len(), 2);
    assert!(store.ratings(&["other".into()]).await.unwrap().is_empty());
    let line = |collection: &str, up, down, comments| RatingSummary {
        collection: collection.into(),
        model: "m".into(),
        up,
        down,
        comments,
    };
    assert_eq!(
        store.rating_summary().await.unwrap(),
        vec![line("rodeo", 1, 1, 1), line("rules", 1, 1, 1)]
    );
    // only the owner's own rating of that message goes
    assert!(
        !store
            .unrate("someone-else", "fc2", &answers[1])
            .await
            .unwrap()
    );
    assert!(!store.unrate(&fay_id, "fc1", &answers[1]).await.unwrap());
    assert!(store.unrate(&fay_id, "fc2", &answers[1]).await.unwrap());
    assert!(!store.unrate(&fay_id, "fc2", &answers[1]).await.unwrap());
    // a deleted conversation takes its ratings and their passages with it
    assert!(store.delete_conversation(&fay_id, "fc1").await.unwrap());
    assert!(store.ratings(&[]).await.unwrap().is_empty());
    assert!(store.rating_summary().await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    suite(&store).await;
    accounts_suite(&store).await;
    site_actions_suite(&store).await;
    audit_suite(&store).await;
    identity_suite(&store).await;
    billing_suite(&store).await;
    sources_suite(&store).await;
    retention_suite(&store).await;
    feedback_suite(&store).await;
    store.close().await;
    // reopening keeps the data and does not re-run migrations destructively
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    assert_eq!(store.chunk_ids().await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let db = PgDatabase::create().await;
    let store = SqlStore::open_postgres(&db.url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    suite(&store).await;
    accounts_suite(&store).await;
    site_actions_suite(&store).await;
    audit_suite(&store).await;
    identity_suite(&store).await;
    billing_suite(&store).await;
    sources_suite(&store).await;
    retention_suite(&store).await;
    feedback_suite(&store).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let err = SqlStore::open_postgres("postgres://nobody@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}
