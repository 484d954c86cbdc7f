//! SIP over WS: implementation pending (see the project's issues).
