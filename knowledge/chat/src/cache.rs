//! The answer cache: an identical first question on unchanged collections is answered from
//! memory (when `chat.cache_enabled`).

use super::*;

const CACHE_CAPACITY: usize = 1_000;

#[derive(Debug, Clone)]
pub(super) struct CachedAnswer {
    pub(super) at: Instant,
    /// Whose question it answered first (forgotten with them).
    pub(super) owner: String,
    pub(super) citations: Vec<Citation>,
    pub(super) text: String,
    pub(super) check: CitationCheck,
    pub(super) model: String,
    pub(super) provider: Option<String>,
    pub(super) extractive: bool,
}

impl Chat {
    pub(super) fn cached(&self, key: &str) -> Option<CachedAnswer> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = Duration::from_secs(self.config.cache_ttl_secs);
        cache.retain(|_, v| v.at.elapsed() < ttl);
        cache.get(key).cloned()
    }

    /// Drops the answers a user's questions put in the cache.
    pub fn forget_user(&self, user_id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, v| v.owner != user_id);
    }

    pub(super) fn remember(&self, key: String, answer: CachedAnswer) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, v)| v.at)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(key, answer);
    }

    /// The cache key of a first question (`None` when the cache is off or history matters):
    /// the model, the searched collections' versions (any ingestion or deletion changes them)
    /// and the question.
    pub(super) async fn cache_key(&self, job: &Job) -> Result<Option<String>> {
        if !self.config.cache_enabled || !job.history.is_empty() {
            return Ok(None);
        }
        let mut searched: Vec<&CollectionHead> = job.searched.iter().collect();
        searched.sort_by(|a, b| a.name.cmp(&b.name));
        let versions: String = searched
            .iter()
            .map(|c| format!("{}@{};", c.name, c.version))
            .collect();
        let model = match (&job.request.model, &self.llm) {
            (Some(m), _) => m.as_str(),
            (None, Some(llm)) => llm.primary().model.as_str(),
            (None, None) => "extractive",
        };
        let question = job.request.message.trim().to_lowercase();
        Ok(Some(content_hash(
            format!("{model}\n{versions}\n{question}").as_bytes(),
        )))
    }
}
