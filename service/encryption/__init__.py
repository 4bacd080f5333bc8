"""Voice Recording Encryption: the accounts' RSA public keys, and recordings stored as Twilio
stores them under one (AES-256-GCM with a per-recording key, that key under RSA-OAEP)."""
