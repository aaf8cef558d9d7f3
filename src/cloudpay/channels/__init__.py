"""Payment channels (WeChat Pay, Alipay, UnionPay, partner banks) behind one protocol.

Channels import only `cloudpay.kernel`: they speak the providers' wire formats and map them
to our vocabulary (`protocol.py`); what that means for an order is the payments context's job.
"""
