//! Chat's settings: the language-model providers and their fallback (`[llm]`), the local model
//! (`[llm.local]`) and the assistant's answers (`[chat]`).

use std::path::{Path, PathBuf};

use base::config::{Secret, default_assets_dir};
use base::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LlmApi {
    /// `POST {base_url}/chat/completions`, streamed as OpenAI does.
    #[default]
    Openai,
    /// `POST {base_url}/messages` (Anthropic Messages API), streamed.
    Anthropic,
    /// A GGUF model (`model_path`) run in-process by llama.cpp: see `[llm.local]`.
    Llama,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs, metrics and the message record.
    pub name: String,
    pub api: LlmApi,
    /// e.g. `https://api.openai.com/v1` or `https://api.anthropic.com/v1` (not for `llama`).
    #[serde(default)]
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    /// The GGUF file of an `llama` provider.
    #[serde(default)]
    pub model_path: Option<PathBuf>,
    /// This provider's own first-token and total timeouts (default: `[llm]`'s).
    #[serde(default)]
    pub first_token_timeout_ms: Option<u64>,
    #[serde(default)]
    pub total_timeout_ms: Option<u64>,
    /// US dollars per million tokens, for the cost recorded with each message.
    #[serde(default)]
    pub input_price_per_mtok: f64,
    #[serde(default)]
    pub output_price_per_mtok: f64,
    /// Tokens of context the model accepts (prompt budget = this − max_output_tokens).
    #[serde(default = "default_context_tokens")]
    pub context_tokens: usize,
    #[serde(default = "default_max_output_tokens")]
    pub max_output_tokens: usize,
    /// The most source text the prompt carries, in tokens (estimated): past it, each source is
    /// cut to its sentences that bear on the question. Unset: whole passages (a model that reads
    /// prompts slowly, as a local one on a small machine does, answers sooner with less).
    #[serde(default)]
    pub source_tokens: Option<usize>,
}

fn default_context_tokens() -> usize {
    16_000
}
fn default_max_output_tokens() -> usize {
    1_024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Tried in order: the next is used when one fails before its first token.
    pub providers: Vec<ProviderConfig>,
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
    /// Retries per provider on 429 and 5xx before the first token, with exponential backoff.
    pub retries: u32,
    pub backoff_ms: u64,
    /// Consecutive failures that open a provider's circuit, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    pub local: LocalLlmConfig,
}

/// The in-process model (providers with `api = "llama"`, and the one `make setup-llm` installs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalLlmConfig {
    /// With no provider configured, answer with the model `make setup-llm` installed in the
    /// assets dir (`llm/NAME/model.gguf`), if there is one.
    pub auto: bool,
    /// Which installed model `auto` answers with (one of `make setup-llm`'s names); unset: the
    /// best installed that is fit to answer (the small test model answers only where named).
    pub model: Option<String>,
    /// Threads for prompt processing and generation (0: every core).
    pub threads: usize,
    /// Prompt tokens processed per step.
    pub batch_tokens: usize,
    /// Answers that may wait while the model generates another; more are turned away.
    pub max_waiting: usize,
    /// The installed model's context and longest answer, in its own tokens.
    pub context_tokens: usize,
    pub max_output_tokens: usize,
    /// The installed model's [`ProviderConfig::source_tokens`] (0: whole passages).
    pub source_tokens: usize,
}

impl Default for LocalLlmConfig {
    fn default() -> Self {
        Self {
            auto: true,
            model: None,
            threads: 0,
            batch_tokens: 512,
            max_waiting: 8,
            context_tokens: 4096,
            max_output_tokens: 512,
            source_tokens: 300,
        }
    }
}

/// The models `make setup-llm` installs, best first, each with whether `auto` may pick it
/// unnamed: a model too small to answer (the 135M test model states lengths no source gives)
/// answers only where it is named.
const LOCAL_MODELS: &[(&str, bool)] = &[("qwen2.5-coder-1.5b", true), ("smollm2-135m", false)];

impl LocalLlmConfig {
    /// The provider for the chosen (else the best fit) installed local model, if any.
    pub fn installed(&self, assets: &Path) -> Option<ProviderConfig> {
        let mut chosen = LOCAL_MODELS
            .iter()
            .filter(|(name, fit)| self.model.as_deref().map_or(*fit, |m| m == *name))
            .map(|(name, _)| name);
        let (name, path) = chosen.find_map(|name| {
            let path = assets.join("llm").join(name).join("model.gguf");
            path.is_file().then_some((*name, path))
        })?;
        Some(ProviderConfig {
            name: "local".into(),
            api: LlmApi::Llama,
            base_url: String::new(),
            api_key: None,
            model: name.into(),
            model_path: Some(path),
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            context_tokens: self.context_tokens,
            max_output_tokens: self.max_output_tokens,
            source_tokens: (self.source_tokens > 0).then_some(self.source_tokens),
            // prompt processing on a small machine takes seconds, and answers wait their turn
            first_token_timeout_ms: Some(600_000),
            total_timeout_ms: Some(900_000),
        })
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            connect_timeout_ms: 3_000,
            first_token_timeout_ms: 20_000,
            total_timeout_ms: 120_000,
            retries: 2,
            backoff_ms: 200,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            local: LocalLlmConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Passages retrieved and numbered as sources for each answer.
    pub sources: usize,
    /// Answers to an identical question on an unchanged collection are served from a cache.
    pub cache_enabled: bool,
    pub cache_ttl_secs: u64,
    /// Share of a cited sentence's content words that must appear in its passage.
    pub support_threshold: f32,
    /// Answers finding their sources at once; the rest wait their turn in order of arrival, so a
    /// crowd is served first come, first served instead of every answer slowing together.
    /// 0 = twice the cores.
    pub preparing: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            sources: 6,
            cache_enabled: false,
            cache_ttl_secs: 600,
            support_threshold: 0.5,
            preparing: 0,
        }
    }
}

/// A source budget a prompt can be built to: room for a sentence or two, within the context.
fn sensible_source_tokens(n: usize, context_tokens: usize) -> bool {
    (32..context_tokens).contains(&n)
}

/// Retries per provider at most (the backoff doubles each time).
const MAX_LLM_RETRIES: u32 = 10;
/// Longest timeout accepted: one day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

impl LlmConfig {
    /// Checks the local model, every provider, and the retry and timeout settings.
    pub fn validate(&self) -> Result<()> {
        let l = &self.local;
        if l.threads > 1024
            || !(1..=8192).contains(&l.batch_tokens)
            || l.max_waiting > 100_000
            || !(256..=1_048_576).contains(&l.context_tokens)
            || l.max_output_tokens == 0
            || l.max_output_tokens >= l.context_tokens
            || (l.source_tokens > 0 && !sensible_source_tokens(l.source_tokens, l.context_tokens))
        {
            return Err(Error::InvalidInput(
                "llm.local: threads 0-1024, batch_tokens 1-8192, max_waiting up to 100000, \
                 context_tokens 256-1048576, max_output_tokens positive and below it, and \
                 source_tokens 0 or 32 and up, below context_tokens"
                    .into(),
            ));
        }
        if let Some(model) = &l.model
            && !LOCAL_MODELS.iter().any(|(name, _)| name == model)
        {
            let names: Vec<&str> = LOCAL_MODELS.iter().map(|(name, _)| *name).collect();
            return Err(Error::InvalidInput(format!(
                "llm.local.model: {model:?} is not one of {}",
                names.join(", ")
            )));
        }
        for p in &self.providers {
            if (p.api == LlmApi::Llama) != p.model_path.is_some() {
                return Err(Error::InvalidInput(format!(
                    "llm provider {}: model_path is for api = \"llama\", which needs it",
                    p.name
                )));
            }
            if p.max_output_tokens == 0 || p.max_output_tokens >= p.context_tokens {
                return Err(Error::InvalidInput(format!(
                    "llm provider {}: max_output_tokens must be positive and below context_tokens",
                    p.name
                )));
            }
            if let Some(n) = p.source_tokens
                && !sensible_source_tokens(n, p.context_tokens)
            {
                return Err(Error::InvalidInput(format!(
                    "llm provider {}: source_tokens must be 32 or more and below context_tokens \
                     (got {n})",
                    p.name
                )));
            }
        }
        let l = self;
        if l.retries > MAX_LLM_RETRIES
            || l.backoff_ms > 60_000
            || l.connect_timeout_ms == 0
            || l.first_token_timeout_ms == 0
            || l.total_timeout_ms == 0
            || l.breaker_failures == 0
            || [
                l.connect_timeout_ms,
                l.first_token_timeout_ms,
                l.total_timeout_ms,
            ]
            .iter()
            .any(|ms| *ms > MAX_TIMEOUT_MS)
        {
            return Err(Error::InvalidInput(format!(
                "llm: retries must be 0-{MAX_LLM_RETRIES}, backoff_ms at most 60000, timeouts \
                 1-{MAX_TIMEOUT_MS} ms and breaker_failures positive"
            )));
        }
        Ok(())
    }

    /// The providers in fallback order: `first` (the environment's single provider), then
    /// `llm.providers`; with none configured, the installed local model (see
    /// [`LocalLlmConfig::auto`]).
    pub fn providers(&self, first: Option<ProviderConfig>) -> Vec<ProviderConfig> {
        let mut out: Vec<ProviderConfig> = first.into_iter().collect();
        out.extend(self.providers.iter().cloned());
        // a build without the local model never picks one up
        if out.is_empty()
            && cfg!(feature = "local-llm")
            && self.local.auto
            && let Some(local) = self.local.installed(&default_assets_dir())
        {
            out.push(local);
        }
        out
    }
}

impl ProviderConfig {
    /// One OpenAI-compatible provider with default limits and no prices (the environment's
    /// `LARIAT_LLM_…` provider).
    pub fn openai(base_url: String, api_key: Option<Secret>, model: Option<String>) -> Self {
        Self {
            name: "default".into(),
            api: LlmApi::Openai,
            base_url,
            api_key,
            model: model.unwrap_or_else(|| "gpt-4o-mini".into()),
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            context_tokens: default_context_tokens(),
            max_output_tokens: default_max_output_tokens(),
            model_path: None,
            first_token_timeout_ms: None,
            total_timeout_ms: None,
            source_tokens: None,
        }
    }
}

impl ChatConfig {
    pub fn validate(&self) -> Result<()> {
        if self.sources == 0 || self.sources > 50 {
            return Err(Error::InvalidInput("chat.sources must be 1-50".into()));
        }
        if self.preparing > 10_000 {
            return Err(Error::InvalidInput(
                "chat.preparing must be 0 (twice the cores) to 10000".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_picks_a_model_too_small_to_answer() {
        let assets = tempfile::tempdir().unwrap();
        let install = |name: &str| {
            let dir = assets.path().join("llm").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("model.gguf"), b"gguf").unwrap();
        };
        let unnamed = LocalLlmConfig::default();
        let named = |m: &str| LocalLlmConfig {
            model: Some(m.into()),
            ..LocalLlmConfig::default()
        };
        assert!(unnamed.installed(assets.path()).is_none());
        // only the test model installed: it answers where named, never unnamed
        install("smollm2-135m");
        assert!(unnamed.installed(assets.path()).is_none());
        let small = named("smollm2-135m").installed(assets.path()).unwrap();
        assert_eq!(small.model, "smollm2-135m");
        // a model fit to answer is picked unnamed; a name not installed picks nothing
        install("qwen2.5-coder-1.5b");
        assert_eq!(
            unnamed.installed(assets.path()).unwrap().model,
            "qwen2.5-coder-1.5b"
        );
        assert!(named("llama-70b").installed(assets.path()).is_none());
    }
}
