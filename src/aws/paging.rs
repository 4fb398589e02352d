//! The one `NextToken` loop: every paged EventBridge listing goes through [`all_pages`], so
//! that the end of a listing, the bound on its length and the guard against a token that comes
//! back are decided in one place.

use std::collections::HashSet;
use std::future::Future;

use crate::error::{AwsError, AwsErrorClass, TerminalCause};

/// Most pages one listing may take. At the model's largest page (100 entries) that is a
/// million sources or accounts, far beyond any partner's; a listing that still goes on is
/// broken, and must not run forever against the budget.
pub const MAX_PAGES: usize = 10_000;

/// One page of a listing: its entries, and the token of the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The entries of this page, possibly none.
    pub items: Vec<T>,
    /// `NextToken`; `None` or empty on the last page.
    pub next_token: Option<String>,
}

/// Why a listing was abandoned although every call succeeded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    /// A `NextToken` came back that this listing had already followed: following it again
    /// would loop.
    #[error("NextToken {0:?} came back a second time")]
    RepeatedToken(String),
    /// The listing had more pages than the bound.
    #[error("more than {0} pages")]
    TooManyPages(usize),
}

/// A listing that loops is an AWS-side fault that may well be gone on the next try; one that
/// exceeds the bound will not shrink by trying again.
impl From<PagingError> for AwsError {
    fn from(e: PagingError) -> Self {
        let (class, code) = match &e {
            PagingError::RepeatedToken(_) => (AwsErrorClass::Retryable, "RepeatedNextToken"),
            PagingError::TooManyPages(_) => (
                AwsErrorClass::Terminal(TerminalCause::Other),
                "TooManyPages",
            ),
        };
        AwsError {
            class,
            code: code.into(),
            message: format!("the listing was abandoned: {e}"),
            request_id: None,
            throttling: false,
        }
    }
}

/// Every entry of a paged listing, in the order of its pages: calls `page(None)`, then
/// `page(Some(token))` with each `NextToken` until a page comes without one (an empty token
/// counts as none, as the SDK paginators treat it). The first failed page ends the listing
/// with its error; a token seen before, or more than `max_pages` pages, end it with a
/// [`PagingError`]. An empty page that carries a token is followed, as AWS may send one.
pub async fn all_pages<T, E, F, Fut>(max_pages: usize, mut page: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, E>>,
    E: From<PagingError>,
{
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut token = None;
    for _ in 0..max_pages {
        let next = page(token.take()).await?;
        items.extend(next.items);
        match next.next_token {
            Some(t) if !t.is_empty() => {
                // Every token, not just the last one, so that a cycle of any length stops.
                if !seen.insert(t.clone()) {
                    return Err(PagingError::RepeatedToken(t).into());
                }
                token = Some(t);
            }
            _ => return Ok(items),
        }
    }
    Err(PagingError::TooManyPages(max_pages).into())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A listing served from a script of answers, recording the tokens it was asked with.
    struct Script {
        answers: Mutex<Vec<Result<Page<u32>, AwsError>>>,
        asked: Mutex<Vec<Option<String>>>,
    }

    impl Script {
        fn new(answers: Vec<Result<Page<u32>, AwsError>>) -> Self {
            Script {
                answers: Mutex::new(answers.into_iter().rev().collect()),
                asked: Mutex::new(Vec::new()),
            }
        }

        async fn page(&self, token: Option<String>) -> Result<Page<u32>, AwsError> {
            self.asked.lock().unwrap().push(token);
            self.answers
                .lock()
                .unwrap()
                .pop()
                .expect("asked for a page past the script")
        }

        fn asked(&self) -> Vec<Option<String>> {
            self.asked.lock().unwrap().clone()
        }

        async fn list(&self, max_pages: usize) -> Result<Vec<u32>, AwsError> {
            all_pages(max_pages, |token| self.page(token)).await
        }
    }

    fn page(items: &[u32], token: Option<&str>) -> Result<Page<u32>, AwsError> {
        Ok(Page {
            items: items.to_vec(),
            next_token: token.map(str::to_owned),
        })
    }

    fn some(token: &str) -> Option<String> {
        Some(token.to_owned())
    }

    #[tokio::test]
    async fn every_page_is_read_in_order_with_the_previous_token() {
        let script = Script::new(vec![
            page(&[1, 2], Some("t2")),
            page(&[3], Some("t3")),
            page(&[4], None),
        ]);
        assert_eq!(script.list(MAX_PAGES).await.unwrap(), [1, 2, 3, 4]);
        assert_eq!(script.asked(), [None, some("t2"), some("t3")]);
    }

    #[tokio::test]
    async fn an_empty_page_with_a_token_is_followed_and_an_empty_token_ends() {
        let script = Script::new(vec![
            page(&[], Some("t2")),
            page(&[], Some("t3")),
            page(&[7], Some("")),
        ]);
        assert_eq!(script.list(MAX_PAGES).await.unwrap(), [7]);
        assert_eq!(script.asked().len(), 3);

        let empty = Script::new(vec![page(&[], None)]);
        assert_eq!(empty.list(MAX_PAGES).await.unwrap(), Vec::<u32>::new());
    }

    #[tokio::test]
    async fn a_repeated_token_stops_the_listing_with_an_error() {
        // A cycle of two: t2 → t3 → t2.
        let script = Script::new(vec![
            page(&[1], Some("t2")),
            page(&[2], Some("t3")),
            page(&[3], Some("t2")),
        ]);
        let e = script.list(MAX_PAGES).await.unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("RepeatedNextToken", AwsErrorClass::Retryable)
        );
        assert!(e.message.contains("\"t2\""), "{e}");
        assert_eq!(script.asked().len(), 3, "no page after the repeat");
    }

    #[tokio::test]
    async fn the_number_of_pages_is_bounded() {
        let script = Script::new(vec![
            page(&[1], Some("t2")),
            page(&[2], Some("t3")),
            page(&[3], Some("t4")),
        ]);
        let e = script.list(3).await.unwrap_err();
        assert_eq!(e.code, "TooManyPages");
        assert_eq!(e.class, AwsErrorClass::Terminal(TerminalCause::Other));
        assert_eq!(script.asked().len(), 3);
    }

    #[tokio::test]
    async fn an_error_on_a_later_page_is_returned_as_it_was() {
        let throttled = AwsError {
            class: AwsErrorClass::Retryable,
            code: "ThrottlingException".into(),
            message: "slow down".into(),
            request_id: Some("req-2".into()),
            throttling: true,
        };
        let script = Script::new(vec![page(&[1], Some("t2")), Err(throttled.clone())]);
        let e = script.list(MAX_PAGES).await.unwrap_err();
        assert_eq!(e, throttled);
        assert_eq!(script.asked(), [None, some("t2")]);
    }
}
