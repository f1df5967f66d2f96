"""Domain code of the booking saga: one module per service, one module that touches DynamoDB."""
