//! SIP over TCP: implementation pending (see the project's issues).
