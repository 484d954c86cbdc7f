//! SIP over TLS: implementation pending (see the project's issues).
