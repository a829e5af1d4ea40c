//! The answer cache: an identical first question on unchanged collections is answered from
//! memory (when `chat.cache_enabled`). Each server caches its own answers; what must leave every
//! server's cache at once (the answers to an erased user's questions, or to conversations the
//! retention job deleted) goes by moving the deployment's epoch in SQL, which every lookup reads.

use super::*;

const CACHE_CAPACITY: usize = 1_000;

#[derive(Debug, Clone)]
pub(super) struct CachedAnswer {
    pub(super) at: Instant,
    /// The deployment's epoch when the answer began: a later move drops it.
    pub(super) epoch: i64,
    /// Whose question it answered first (forgotten with them).
    pub(super) owner: String,
    pub(super) citations: Vec<Citation>,
    pub(super) text: String,
    pub(super) check: CitationCheck,
    pub(super) model: String,
    pub(super) provider: Option<String>,
    pub(super) extractive: bool,
}

/// A cacheable question: its key, the deployment's epoch when it was asked, and the answer
/// cached for it, if any is still good.
pub(super) struct Lookup {
    pub(super) key: String,
    pub(super) epoch: i64,
    pub(super) hit: Option<CachedAnswer>,
}

impl Chat {
    /// Looks the question up (`None` when it is not cacheable), first dropping what expired or
    /// came before the deployment's epoch.
    pub(super) async fn lookup(&self, job: &Job) -> Result<Option<Lookup>> {
        let Some(key) = self.cache_key(job) else {
            return Ok(None);
        };
        let epoch = self.conversations.answer_cache_epoch().await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = Duration::from_secs(self.config.cache_ttl_secs);
        cache.retain(|_, v| v.at.elapsed() < ttl && v.epoch >= epoch);
        let hit = cache.get(&key).cloned();
        Ok(Some(Lookup { key, epoch, hit }))
    }

    /// Drops the answers the users' questions put in the cache, on this server at once and on
    /// every other at its next lookup.
    pub async fn forget_users(&self, user_ids: &[String]) -> Result<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        self.conversations.move_answer_cache_epoch().await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, v| !user_ids.contains(&v.owner));
        Ok(())
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
    fn cache_key(&self, job: &Job) -> Option<String> {
        if !self.config.cache_enabled || !job.history.is_empty() {
            return None;
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
        Some(content_hash(
            format!("{model}\n{versions}\n{question}").as_bytes(),
        ))
    }
}
