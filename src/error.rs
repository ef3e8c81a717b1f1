//! The service-layer error. Services say what went wrong in domain terms; `http::problem` maps
//! each case to one status and stable machine code. Internal errors carry their cause for the log
//! only: the client sees a generic 500 with a request id, never SQL, paths or secrets.
//! The `Display` text of every other variant is written for the person who made the request.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is well-formed JSON but not acceptable (422).
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String },
    /// No session, or not a valid one (401).
    #[error("Sign in to continue.")]
    Unauthenticated,
    /// Wrong email or password; the same answer for both (401).
    #[error("The email address or password is not correct.")]
    InvalidCredentials,
    /// Right password, email not yet verified (403).
    #[error("Confirm your email address first: follow the link we sent you.")]
    EmailNotVerified,
    /// A wrong, reused or expired second-factor code (401).
    #[error("The code is not correct, or was already used.")]
    InvalidCode,
    /// A used, expired or unknown emailed token (400).
    #[error("This link is invalid, was already used, or has expired.")]
    InvalidToken,
    /// The resource does not exist for this caller (404).
    #[error("Not found.")]
    NotFound,
    /// Visible but not allowed (403).
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// A request that cannot be taken as it is (400), e.g. an unverifiable signature.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// Conflicts with the current state (409), e.g. removing a status some item still holds.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Too many attempts (429, `Retry-After`).
    #[error("Too many attempts. Try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    /// The database is saturated or unreachable for now (503, `Retry-After`).
    #[error("The service is busy. Try again in a moment.")]
    Unavailable,
    /// A body larger than a route allows (413).
    #[error("{detail}")]
    TooLarge { detail: String },
    /// A stored document failed its integrity check (500, logged with what failed): never served.
    #[error("The stored copy of this document failed its integrity check and was not served; the administrators have been told.")]
    Corrupt(String),
    /// Anything else: logged, answered 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A wrong second-factor code sent by a signed-in session (enrolment, removal, step-up): 422
    /// with the stable code `invalid_code`. Not 401: the session is valid, and a client reading
    /// 401 would sign its user out.
    pub fn wrong_code() -> Self {
        Self::Invalid {
            code: "invalid_code",
            detail: "The code is not correct, or was already used.".into(),
        }
    }

    /// A wrong password sent by a signed-in session (step-up): 422 `invalid_credentials`, for the
    /// same reason.
    pub fn wrong_password() -> Self {
        Self::Invalid {
            code: "invalid_credentials",
            detail: "The password is not correct.".into(),
        }
    }

    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        AppError::Invalid {
            code,
            detail: detail.into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database pool unavailable");
                AppError::Unavailable
            }
            e => AppError::Internal(e.into()),
        }
    }
}

impl From<crate::crypto::password::HashError> for AppError {
    fn from(e: crate::crypto::password::HashError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<crate::crypto::CryptoError> for AppError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        match e {
            // An org whose key was destroyed (crypto-shredded) is gone, whatever rows a restored
            // copy still holds.
            crate::crypto::CryptoError::Shredded => AppError::NotFound,
            e => AppError::Internal(e.into()),
        }
    }
}

impl From<crate::ratelimit::RetryAfter> for AppError {
    fn from(r: crate::ratelimit::RetryAfter) -> Self {
        AppError::RateLimited { retry_after: r.0 }
    }
}

pub type AppResult<T> = Result<T, AppError>;
