from cloudpay.cli import app

app(prog_name="cloudpay")
