from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetItemRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("sku", "stock", "attempt")
    SKU_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    stock: int
    attempt: int
    def __init__(self, sku: _Optional[str] = ..., stock: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("sku", "quantity")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("sku", "quantity", "request_id")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    request_id: str
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class WatchStockRequest(_message.Message):
    __slots__ = ("sku", "after", "count")
    SKU_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    after: int
    count: int
    def __init__(self, sku: _Optional[str] = ..., after: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class StockUpdate(_message.Message):
    __slots__ = ("sku", "cursor", "stock")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    sku: str
    cursor: int
    stock: int
    def __init__(self, sku: _Optional[str] = ..., cursor: _Optional[int] = ..., stock: _Optional[int] = ...) -> None: ...
