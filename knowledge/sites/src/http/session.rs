//! The member's session: sign-in on demand with the form's hidden fields (CSRF), member pages
//! asked again after signing in, and forms posted at most once.

use super::*;

impl HttpSite {
    /// Whether a page is the sign-in form (a member page answered "sign in first").
    pub(super) fn is_signin_page(&self, page: &Page) -> Result<bool> {
        let form = selector(&self.layout.signin.form)?;
        Ok(page.url.path() == self.layout.signin.path
            || Html::parse_document(&page.html)
                .select(&form)
                .next()
                .is_some())
    }

    /// Signs in with the configured account (the sign-in form's hidden fields, CSRF token
    /// included, are sent back as the page has them). `seen` is the sign-in generation the caller
    /// saw fail: if another call signed in since, this one does not sign in again.
    pub(super) async fn sign_in(&self, seen: u64) -> Result<()> {
        let mut generation = self.signin.lock().await;
        if *generation != seen {
            return Ok(());
        }
        let s = &self.settings;
        let (Some(user), Some(password)) = (&s.username, &s.password) else {
            return Err(Error::Unavailable(format!(
                "{} needs a member sign-in: set the account lariat uses in sites.<domain>.username \
                 and sites.<domain>.password (LARIAT_SITES__<DOMAIN>__USERNAME / __PASSWORD)",
                self.layout.name
            )));
        };
        let signin = &self.layout.signin;
        let page = self
            .send(Method::GET, self.url(&signin.path, None)?, None)
            .await?;
        let form = HtmlForm::find(&page, &signin.form)?;
        let mut fields = form.fields.clone();
        form.set(&mut fields, &signin.username_field, user)?;
        form.set(&mut fields, &signin.password_field, password.expose())?;
        let result = self
            .send(form.method.clone(), form.action.clone(), Some(&fields))
            .await?;
        if !result.status.is_success() {
            return Err(Error::Upstream(format!(
                "{} refused the sign-in ({})",
                self.layout.name, result.status
            )));
        }
        let doc = Html::parse_document(&result.html);
        if let Some(err) = doc.select(&selector(&signin.error)?).next() {
            return Err(Error::Unavailable(format!(
                "{} refused the configured account: {}",
                self.layout.name,
                cap(&text_of(err), 200)
            )));
        }
        if doc.select(&selector(&signin.form)?).next().is_some() {
            return Err(Error::Unavailable(format!(
                "{} still shows its sign-in form after signing in; check the account settings",
                self.layout.name
            )));
        }
        *generation += 1;
        tracing::info!(site = %self.layout.name, "signed in");
        Ok(())
    }

    /// A member page: signs in first when the site answers with its sign-in form (never signed
    /// in, or the session expired), then asks once more.
    pub(super) async fn member_page(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page> {
        for _ in 0..2 {
            let seen = *self.signin.lock().await;
            let page = self.send(method.clone(), url.clone(), form).await?;
            if !self.is_signin_page(&page)? {
                return Ok(page);
            }
            self.sign_in(seen).await?;
        }
        Err(Error::Unavailable(format!(
            "{} keeps asking to sign in; check the account settings",
            self.layout.name
        )))
    }

    pub(super) async fn page(&self, url: Url, signed_in: bool) -> Result<Page> {
        let page = if signed_in {
            self.member_page(Method::GET, url, None).await?
        } else {
            self.send(Method::GET, url, None).await?
        };
        if page.status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "{} has no such page ({})",
                self.layout.name,
                page.url.path()
            )));
        }
        if !page.status.is_success() {
            return Err(Error::Upstream(format!(
                "{} answered {} for {}",
                self.layout.name,
                page.status,
                page.url.path()
            )));
        }
        Ok(page)
    }

    /// Posts a filled form once. A site that answers with its sign-in form did not act on it:
    /// lariat signs in and posts it again. Anything else that fails after the form left may
    /// have been acted on.
    pub(super) async fn post_form(
        &self,
        form: &HtmlForm,
        fields: &[(String, String)],
    ) -> std::result::Result<Page, WriteError> {
        for _ in 0..2 {
            let seen = *self.signin.lock().await;
            let page = self
                .transport
                .send(form.method.clone(), form.action.clone(), Some(fields))
                .await
                .map_err(|e| {
                    if e.sent {
                        WriteError::Uncertain(e.error)
                    } else {
                        WriteError::NotSent(e.error)
                    }
                })?;
            if !self.is_signin_page(&page).map_err(WriteError::Uncertain)? {
                return Ok(page);
            }
            self.sign_in(seen).await.map_err(WriteError::NotSent)?;
        }
        Err(WriteError::NotSent(Error::Unavailable(format!(
            "{} keeps asking to sign in; check the account settings",
            self.layout.name
        ))))
    }
}
