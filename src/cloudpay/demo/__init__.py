"""`cloudpay demo`: a demo city on the embedded database, run for a day, then served."""
