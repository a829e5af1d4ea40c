//! The connection to a Qdrant server or cluster (`retrieval.qdrant`) that the Qdrant vector store
//! and lexical index share: its gRPC client, the names of Lariat's collections, how they are
//! created (shards, copies, write consistency, payload indexes) and how its failures read.
//!
//! Every write waits (`wait = true`) under strong ordering: a write that returned is what the next
//! search on any server sees, as with the other shared backends.

use std::collections::HashMap;
use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    Condition, CreateCollection, CreateFieldIndexCollection, DeleteCollection, FieldType, Filter,
    PointId, PointsSelector, SparseVectorConfig, Value, VectorsConfig, WriteOrdering,
    WriteOrderingType, points_selector, value,
};

use crate::config::QdrantConfig;
use base::error::{Error, Result};

/// A Qdrant failure as the domain's error: unreachable is `Unavailable`, the rest the engine's.
pub(crate) fn qdrant_err(e: qdrant_client::QdrantError) -> Error {
    match &e {
        // the client reports a refused connection as an internal status naming the transport
        qdrant_client::QdrantError::ResponseError { status }
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) || status.message().contains("Failed to connect") =>
        {
            Error::Unavailable(format!("Qdrant is unreachable: {}", status.message()))
        }
        _ => Error::Vector(format!("Qdrant: {e}")),
    }
}

/// Points written per request.
pub(crate) const WRITE_BATCH: usize = 256;
/// Points read per scroll page.
pub(crate) const SCROLL_PAGE: u32 = 1000;

/// A client for one deployment's collections on a Qdrant server.
pub struct QdrantEngine {
    pub(crate) client: Qdrant,
    config: QdrantConfig,
}

impl std::fmt::Debug for QdrantEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantEngine")
            .field("url", &self.config.url)
            .field("collection_prefix", &self.config.collection_prefix)
            .finish()
    }
}

impl QdrantEngine {
    /// A client for `config`'s server; the connection is made on the first request.
    pub fn connect(config: &QdrantConfig) -> Result<Self> {
        let client = Qdrant::from_url(&config.url)
            .api_key(config.api_key.as_ref().map(|k| k.expose().to_owned()))
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .skip_compatibility_check()
            .build()
            .map_err(|e| Error::InvalidInput(format!("retrieval.qdrant.url: {e}")))?;
        Ok(Self {
            client,
            config: config.clone(),
        })
    }

    /// The name of Lariat's collection `suffix` (`chunks`, `lexical`).
    pub(crate) fn collection(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.config.collection_prefix)
    }

    /// Creates collection `name` with `vectors` and `sparse` and keyword indexes on `keywords`,
    /// unless it exists. Servers starting together may race: a creation that lost to another is
    /// not an error.
    pub(crate) async fn ensure_collection(
        &self,
        name: &str,
        vectors: Option<VectorsConfig>,
        sparse: Option<SparseVectorConfig>,
        keywords: &[&str],
    ) -> Result<()> {
        if self
            .client
            .collection_exists(name)
            .await
            .map_err(qdrant_err)?
        {
            return Ok(());
        }
        let created = self
            .client
            .create_collection(CreateCollection {
                collection_name: name.to_owned(),
                vectors_config: vectors,
                sparse_vectors_config: sparse,
                shard_number: Some(self.config.shard_number),
                replication_factor: Some(self.config.replication_factor),
                write_consistency_factor: Some(self.config.write_consistency_factor),
                ..Default::default()
            })
            .await;
        if let Err(e) = created
            && !self
                .client
                .collection_exists(name)
                .await
                .map_err(qdrant_err)?
        {
            return Err(qdrant_err(e));
        }
        for field in keywords {
            self.client
                .create_field_index(CreateFieldIndexCollection {
                    collection_name: name.to_owned(),
                    wait: Some(true),
                    field_name: (*field).to_owned(),
                    field_type: Some(FieldType::Keyword as i32),
                    ..Default::default()
                })
                .await
                .map_err(qdrant_err)?;
        }
        Ok(())
    }

    /// Drops collection `name` if it exists.
    pub(crate) async fn drop_collection(&self, name: &str) -> Result<()> {
        if self
            .client
            .collection_exists(name)
            .await
            .map_err(qdrant_err)?
        {
            self.client
                .delete_collection(DeleteCollection {
                    collection_name: name.to_owned(),
                    ..Default::default()
                })
                .await
                .map_err(qdrant_err)?;
        }
        Ok(())
    }
}

/// Strong ordering: every copy applies the writes in the leader's order.
pub(crate) fn strong() -> Option<WriteOrdering> {
    Some(WriteOrdering {
        r#type: WriteOrderingType::Strong as i32,
    })
}

/// Points whose keyword `field` is any of `values`.
pub(crate) fn any_of(field: &str, values: &[String]) -> Condition {
    Condition::matches(field, values.to_vec())
}

/// The points `filter` selects.
pub(crate) fn selected(filter: Filter) -> Option<PointsSelector> {
    Some(PointsSelector {
        points_selector_one_of: Some(points_selector::PointsSelectorOneOf::Filter(filter)),
    })
}

/// A point's UUID as Lariat writes it.
pub(crate) fn point_uuid(id: Option<&PointId>) -> Option<String> {
    use qdrant_client::qdrant::point_id::PointIdOptions;
    match id?.point_id_options.as_ref()? {
        PointIdOptions::Uuid(u) => Some(u.clone()),
        PointIdOptions::Num(n) => Some(n.to_string()),
    }
}

/// A string of a payload.
pub(crate) fn text(payload: &HashMap<String, Value>, key: &str) -> Option<String> {
    match payload.get(key)?.kind.as_ref()? {
        value::Kind::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// An integer of a payload.
pub(crate) fn integer(payload: &HashMap<String, Value>, key: &str) -> Option<i64> {
    match payload.get(key)?.kind.as_ref()? {
        value::Kind::IntegerValue(n) => Some(*n),
        value::Kind::DoubleValue(x) => Some(*x as i64),
        _ => None,
    }
}

/// Only the payload `fields` of each point (none when empty).
pub(crate) fn with_payload(fields: &[&str]) -> Option<qdrant_client::qdrant::WithPayloadSelector> {
    use qdrant_client::qdrant::{
        PayloadIncludeSelector, WithPayloadSelector, with_payload_selector,
    };
    Some(WithPayloadSelector {
        selector_options: Some(if fields.is_empty() {
            with_payload_selector::SelectorOptions::Enable(false)
        } else {
            with_payload_selector::SelectorOptions::Include(PayloadIncludeSelector {
                fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            })
        }),
    })
}

impl QdrantEngine {
    /// Drops Lariat's collections under this prefix (tests, and operators leaving Qdrant).
    pub async fn drop_all(&self) -> Result<()> {
        for suffix in ["chunks", "lexical"] {
            self.drop_collection(&self.collection(suffix)).await?;
        }
        Ok(())
    }
}

impl QdrantEngine {
    /// Writes `points` into `collection`, a batch per request, each waited for.
    pub(crate) async fn upsert(
        &self,
        collection: &str,
        points: impl IntoIterator<Item = qdrant_client::qdrant::PointStruct>,
    ) -> Result<()> {
        let mut points = points.into_iter().peekable();
        while points.peek().is_some() {
            self.client
                .upsert_points(qdrant_client::qdrant::UpsertPoints {
                    collection_name: collection.to_owned(),
                    wait: Some(true),
                    points: points.by_ref().take(WRITE_BATCH).collect(),
                    ordering: strong(),
                    ..Default::default()
                })
                .await
                .map_err(qdrant_err)?;
        }
        Ok(())
    }

    /// Removes every point of `documents` from `collection`, waited for.
    pub(crate) async fn delete_documents(
        &self,
        collection: &str,
        documents: &[String],
    ) -> Result<()> {
        for batch in documents.chunks(WRITE_BATCH) {
            self.client
                .delete_points(qdrant_client::qdrant::DeletePoints {
                    collection_name: collection.to_owned(),
                    wait: Some(true),
                    points: selected(Filter::must([any_of("document_id", batch)])),
                    ordering: strong(),
                    ..Default::default()
                })
                .await
                .map_err(qdrant_err)?;
        }
        Ok(())
    }

    /// Every point of `collection` that `filter` selects, page by page, with the payload
    /// `fields`.
    pub(crate) async fn scroll_all(
        &self,
        collection: &str,
        filter: Option<Filter>,
        fields: &[&str],
    ) -> Result<Vec<qdrant_client::qdrant::RetrievedPoint>> {
        let mut out = Vec::new();
        let mut offset = None;
        loop {
            let page = self
                .client
                .scroll(qdrant_client::qdrant::ScrollPoints {
                    collection_name: collection.to_owned(),
                    filter: filter.clone(),
                    offset,
                    limit: Some(SCROLL_PAGE),
                    with_payload: with_payload(fields),
                    ..Default::default()
                })
                .await
                .map_err(qdrant_err)?;
            out.extend(page.result);
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(out),
            }
        }
    }
}
