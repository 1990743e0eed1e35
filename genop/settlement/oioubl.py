"""Settlement documents as OIOUBL 2.1 XML (agreement §8: invoices to the municipalities' EANs).

OIOUBL 2.1 is UBL 2.1 with ``cbc:CustomizationID`` ``OIOUBL-2.1`` plus Danish business
rules (NemHandel schematron). :func:`to_xml` writes an ``Invoice`` or a ``CreditNote`` in
the element order of the UBL 2.1 ``xsd:sequence``; :func:`validate_ubl` checks it against
the OASIS schemas in ``../shared/schemas/ubl-2.1``. The choices made here:

* **Profile**: ``urn:www.nesubl.eu:profiles:profile5:ver2.0`` (NES "billing only") from the
  OIOUBL code list ``urn:oioubl:id:profileid-1.2``, agency 320.
* **Order references**: ``cac:OrderReference/cbc:ID`` (one allowed per document) holds the
  first of ``order_references`` (default: the lines' case numbers); every line that settles
  a course carries its case number in ``cac:OrderLineReference/cbc:LineID`` and
  ``.../cac:OrderReference/cbc:ID``; when there is more than one reference, the header
  ``cbc:Note`` lists them all ("Sagsnumre: ..."), after the document's own note (OIOUBL
  reads several header notes as translations of one another, so there is one).
* **VAT**: rehabilitation delivered by one municipality to another is public-authority
  work outside the VAT system; OIOUBL's tax category list has no "outside scope" code, so
  every document has one ``cac:TaxTotal`` of 0.00 in category ``ZeroRated`` at 0 percent
  (tax scheme 63 "Moms"), on each line too, as OIOUBL requires.
* **Totals**: in OIOUBL, ``cbc:TaxExclusiveAmount`` is the *VAT amount* (schematron
  F-INV127: it must equal the sum of the tax subtotals), so it is 0.00 here;
  ``TaxInclusiveAmount`` = lines + VAT; ``PayableAmount`` = that minus ``PrepaidAmount``
  (the month's a-conto), possibly 0.00. OIOUBL refuses a ``PrepaidAmount`` of 0.00
  (F-LIB374) and wants it matched by ``cac:PrepaidPayment/cbc:PaidAmount`` (F-INV131), so
  both are written only when something was prepaid; UBL has no PrepaidPayment on a
  CreditNote, so a credit note with a prepaid amount carries ``PrepaidAmount`` alone.
* **Payment**: ``PaymentMeansCode`` 1 (means not specified: the municipalities settle by
  transfer outside the document) with ``cbc:PaymentDueDate``.
* **Seller**: OIOUBL requires its ``EndpointID`` and a ``PartyLegalEntity`` with a CVR;
  they are written from ``Party.ean`` (GLN, else ``DK:CVR``) and ``Party.cvr``. Without
  them the document is still valid UBL 2.1 but NemHandel would refuse it.
* **Buyer contact**: OIOUBL requires ``AccountingCustomerParty/Party/Contact/ID``; it is
  the document's order reference (the reference under which the municipality ordered), or
  the document number for a document without one (the monthly a-conto).

No citizen data is written: lines name courses by case number only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from lxml import etree

from genop.errors import GenopError
from genop.templates import render

CENT = Decimal("0.01")
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "ubl-2.1"
HTML_TEMPLATE = "invoices/settlement.da.html.j2"

CUSTOMIZATION_ID = "OIOUBL-2.1"
PROFILE_ID = "urn:www.nesubl.eu:profiles:profile5:ver2.0"
PROFILE_SCHEME = {"schemeAgencyID": "320", "schemeID": "urn:oioubl:id:profileid-1.2"}
INVOICE_TYPE_CODE = "380"
INVOICE_TYPE_LIST = {"listAgencyID": "320", "listID": "urn:oioubl:codelist:invoicetypecode-1.1"}
ADDRESS_FORMAT = {"listAgencyID": "320", "listID": "urn:oioubl:codelist:addressformatcode-1.1"}
GLN_SCHEME = {"schemeAgencyID": "9", "schemeID": "GLN"}
TAX_CATEGORY = "ZeroRated"
TAX_CATEGORY_SCHEME = {"schemeAgencyID": "320", "schemeID": "urn:oioubl:id:taxcategoryid-1.1"}
TAX_SCHEME = {"schemeAgencyID": "320", "schemeID": "urn:oioubl:id:taxschemeid-1.1"}
PAYMENT_MEANS_UNSPECIFIED = "1"

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
ROOT_NS = {kind: f"urn:oasis:names:specification:ubl:schema:xsd:{kind}-2" for kind in ("Invoice", "CreditNote")}
LINE = {"Invoice": ("InvoiceLine", "InvoicedQuantity"), "CreditNote": ("CreditNoteLine", "CreditedQuantity")}

DocumentKind = Literal["Invoice", "CreditNote"]


@dataclass(frozen=True)
class Party:
    """A seller or buyer; municipalities are addressed by EAN (GLN), contractors may add a CVR."""

    name: str
    ean: str | None
    street: str | None
    city: str | None
    postcode: str | None
    country: str = "DK"
    contact_email: str | None = None
    cvr: str | None = None
    """CVR number (8 digits); written as ``PartyLegalEntity/CompanyID`` schemeID ``DK:CVR``."""


@dataclass(frozen=True)
class DocumentLine:
    """One line: a completed course (unit ``EA``) named by its case number, or an a-conto item."""

    line_id: str
    description: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    amount: Decimal
    case_number: str | None


@dataclass(frozen=True)
class SettlementDocument:
    """An invoice or credit note of the settlement (agreement §8), with a-conto offset as prepaid."""

    kind: DocumentKind
    number: str
    issue_date: date
    due_date: date | None
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    prepaid: Decimal = Decimal("0.00")
    note: str | None = None
    order_references: tuple[str, ...] = ()
    currency: str = "DKK"
    billing_reference: str | None = None
    """The number of the document this one corrects (``cac:BillingReference``), if any."""
    billing_references: tuple[str, ...] = ()
    """More documents this one corrects or refunds (one ``cac:BillingReference`` each)."""

    @property
    def corrects(self) -> tuple[str, ...]:
        """Every document referred to by ``cac:BillingReference``, in order, once each."""
        given = ((self.billing_reference,) if self.billing_reference else ()) + self.billing_references
        return tuple(dict.fromkeys(given))

    def __post_init__(self) -> None:
        problems = list(_document_problems(self))
        if problems:
            raise GenopError(f"{self.kind} {self.number}: " + "; ".join(problems), code="invalid_document")

    @property
    def line_total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def payable(self) -> Decimal:
        """What is left to pay after the a-conto (*a conto*) already paid; never negative."""
        return self.line_total - self.prepaid

    @property
    def references(self) -> tuple[str, ...]:
        """The order references: as given, or else the lines' case numbers in line order."""
        if self.order_references:
            return self.order_references
        return tuple(dict.fromkeys(line.case_number for line in self.lines if line.case_number))


def _document_problems(doc: SettlementDocument) -> list[str]:
    problems: list[str] = []
    if doc.kind not in ROOT_NS:
        problems.append(f"kind must be Invoice or CreditNote, not {doc.kind!r}")
    if not doc.number.strip():
        problems.append("the document has no number")
    if doc.kind == "Invoice" and doc.due_date is None:
        problems.append("an invoice needs a due date (30-day payment term)")
    if not doc.buyer.ean or not re.fullmatch(r"\d{13}", doc.buyer.ean):
        problems.append(f"the buyer {doc.buyer.name} needs a 13-digit EAN, not {doc.buyer.ean!r}")
    if not doc.lines:
        problems.append("a document needs at least one line")
    for line in doc.lines:
        for label, value in (("unit price", line.unit_price), ("amount", line.amount)):
            if value != value.quantize(CENT):
                problems.append(f"line {line.line_id}: {label} {value} is not in whole øre")
        if (line.quantity * line.unit_price).quantize(CENT) != line.amount:
            problems.append(f"line {line.line_id}: {line.quantity} x {line.unit_price} is not {line.amount}")
    if doc.prepaid != doc.prepaid.quantize(CENT) or not Decimal(0) <= doc.prepaid <= doc.line_total:
        problems.append(f"prepaid {doc.prepaid} must be in whole øre, between 0 and the total {doc.line_total}")
    return problems


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT):f}"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _amount(parent: etree._Element, tag: str, value: Decimal, currency: str) -> None:
    _el(parent, tag, _money(value), currencyID=currency)


def _party(parent: etree._Element, tag: str, party: Party, contact_id: str | None) -> None:
    """AccountingSupplierParty/AccountingCustomerParty in the order of UBL's PartyType."""
    node = _el(_el(parent, tag), "cac:Party")
    if party.ean:
        _el(node, "cbc:EndpointID", party.ean, **GLN_SCHEME)
        _el(_el(node, "cac:PartyIdentification"), "cbc:ID", party.ean, **GLN_SCHEME)
    elif party.cvr:
        _el(node, "cbc:EndpointID", f"DK{party.cvr}", schemeID="DK:CVR")
    _el(_el(node, "cac:PartyName"), "cbc:Name", party.name)
    if party.street or party.city or party.postcode:
        address = _el(node, "cac:PostalAddress")
        _el(address, "cbc:AddressFormatCode", "StructuredLax", **ADDRESS_FORMAT)
        for tag_name, value in (("cbc:StreetName", party.street), ("cbc:CityName", party.city),
                                ("cbc:PostalZone", party.postcode)):
            if value:
                _el(address, tag_name, value)
        _el(_el(address, "cac:Country"), "cbc:IdentificationCode", party.country)
    if party.cvr:
        legal = _el(node, "cac:PartyLegalEntity")
        _el(legal, "cbc:RegistrationName", party.name)
        _el(legal, "cbc:CompanyID", f"DK{party.cvr}", schemeID="DK:CVR")
    if contact_id or party.contact_email:
        contact = _el(node, "cac:Contact")
        if contact_id:
            _el(contact, "cbc:ID", contact_id)
        if party.contact_email:
            _el(contact, "cbc:ElectronicMail", party.contact_email)


def _tax_total(parent: etree._Element, taxable: Decimal, currency: str) -> None:
    """0.00 VAT: inter-municipal rehabilitation is outside VAT (module docstring)."""
    total = _el(parent, "cac:TaxTotal")
    _amount(total, "cbc:TaxAmount", Decimal("0.00"), currency)
    subtotal = _el(total, "cac:TaxSubtotal")
    _amount(subtotal, "cbc:TaxableAmount", taxable, currency)
    _amount(subtotal, "cbc:TaxAmount", Decimal("0.00"), currency)
    category = _el(subtotal, "cac:TaxCategory")
    _el(category, "cbc:ID", TAX_CATEGORY, **TAX_CATEGORY_SCHEME)
    _el(category, "cbc:Percent", "0.00")
    scheme = _el(category, "cac:TaxScheme")
    _el(scheme, "cbc:ID", "63", **TAX_SCHEME)
    _el(scheme, "cbc:Name", "Moms")


def _line(parent: etree._Element, doc: SettlementDocument, line: DocumentLine) -> None:
    line_tag, quantity_tag = LINE[doc.kind]
    node = _el(parent, f"cac:{line_tag}")
    _el(node, "cbc:ID", line.line_id)
    _el(node, f"cbc:{quantity_tag}", f"{line.quantity:f}", unitCode=line.unit_code)
    _amount(node, "cbc:LineExtensionAmount", line.amount, doc.currency)
    if line.case_number:
        reference = _el(node, "cac:OrderLineReference")
        _el(reference, "cbc:LineID", line.case_number)
        _el(_el(reference, "cac:OrderReference"), "cbc:ID", line.case_number)
    _tax_total(node, line.amount, doc.currency)
    _el(_el(node, "cac:Item"), "cbc:Name", line.description)
    price = _el(node, "cac:Price")
    _amount(price, "cbc:PriceAmount", line.unit_price, doc.currency)
    _el(price, "cbc:BaseQuantity", "1", unitCode=line.unit_code)


def _header(root: etree._Element, doc: SettlementDocument) -> None:
    _el(root, "cbc:UBLVersionID", "2.1")
    _el(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
    _el(root, "cbc:ProfileID", PROFILE_ID, **PROFILE_SCHEME)
    _el(root, "cbc:ID", doc.number)
    _el(root, "cbc:UUID", str(uuid.uuid5(uuid.NAMESPACE_URL, f"genop:{doc.kind}:{doc.number}")).upper())
    _el(root, "cbc:IssueDate", doc.issue_date.isoformat())
    if doc.kind == "Invoice":
        if doc.due_date is not None:
            _el(root, "cbc:DueDate", doc.due_date.isoformat())
        _el(root, "cbc:InvoiceTypeCode", INVOICE_TYPE_CODE, **INVOICE_TYPE_LIST)
    notes = [doc.note] if doc.note else []
    if len(doc.references) > 1:
        notes.append("Sagsnumre: " + ", ".join(doc.references))
    if notes:
        _el(root, "cbc:Note", "\n".join(notes), languageID="da")
    _el(root, "cbc:DocumentCurrencyCode", doc.currency)
    if doc.references:
        _el(_el(root, "cac:OrderReference"), "cbc:ID", doc.references[0])
    for number in doc.corrects:
        reference = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _el(reference, "cbc:ID", number)


def to_xml(doc: SettlementDocument) -> bytes:
    """The document as OIOUBL 2.1 XML (UTF-8, with declaration), in UBL 2.1 element order."""
    nsmap: dict[str | None, str] = {None: ROOT_NS[doc.kind]}
    nsmap.update(NS.items())
    root = etree.Element(f"{{{ROOT_NS[doc.kind]}}}{doc.kind}", nsmap=nsmap)
    _header(root, doc)
    _party(root, "cac:AccountingSupplierParty", doc.seller, contact_id=None)
    buyer_reference = doc.references[0] if doc.references else doc.number
    _party(root, "cac:AccountingCustomerParty", doc.buyer, contact_id=buyer_reference)
    if doc.due_date is not None:
        means = _el(root, "cac:PaymentMeans")
        _el(means, "cbc:ID", "1")
        _el(means, "cbc:PaymentMeansCode", PAYMENT_MEANS_UNSPECIFIED)
        _el(means, "cbc:PaymentDueDate", doc.due_date.isoformat())
    if doc.prepaid and doc.kind == "Invoice":
        prepaid = _el(root, "cac:PrepaidPayment")
        _el(prepaid, "cbc:ID", "A conto")
        _amount(prepaid, "cbc:PaidAmount", doc.prepaid, doc.currency)
    _tax_total(root, doc.line_total, doc.currency)
    totals = _el(root, "cac:LegalMonetaryTotal")
    for tag, value in (("LineExtensionAmount", doc.line_total), ("TaxExclusiveAmount", Decimal("0.00")),
                       ("TaxInclusiveAmount", doc.line_total), ("PrepaidAmount", doc.prepaid),
                       ("PayableAmount", doc.payable)):
        if tag != "PrepaidAmount" or doc.prepaid:
            _amount(totals, f"cbc:{tag}", value, doc.currency)
    for line in doc.lines:
        _line(root, doc, line)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@lru_cache(maxsize=8)
def _schema(kind: str, schemas_dir: Path) -> etree.XMLSchema:
    path = schemas_dir / "maindoc" / f"UBL-{kind}-2.1.xsd"
    if not path.is_file():
        raise GenopError(f"The UBL 2.1 schema {path} is missing; OIOUBL documents cannot be checked.",
                         code="ubl_schemas_missing")
    return etree.XMLSchema(etree.parse(str(path)))


def validate_ubl(xml: bytes, kind: str, schemas_dir: Path | None = None) -> None:
    """Check a document against the UBL 2.1 schema for ``kind``; raise ``ubl_invalid`` if it fails."""
    if kind not in ROOT_NS:
        raise GenopError(f"Unknown UBL document kind {kind!r} (Invoice or CreditNote).", code="ubl_invalid")
    schema = _schema(kind, (schemas_dir or DEFAULT_SCHEMAS_DIR).resolve())
    try:
        tree = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise GenopError(f"The {kind} is not well-formed XML: {exc}", code="ubl_invalid") from exc
    if not schema.validate(tree):
        errors = [f"line {e.line}: {_short_names(e.message)}" for e in list(schema.error_log)[:5]]
        raise GenopError(f"The {kind} does not validate against UBL 2.1: " + "; ".join(errors),
                         code="ubl_invalid")


def _short_names(message: str) -> str:
    """Schema messages name elements as {namespace}Name; write them as cac:Name / cbc:Name."""
    for prefix, namespace in NS.items():
        message = message.replace(f"{{{namespace}}}", f"{prefix}:")
    return message


def danish_amount(value: Decimal | int) -> str:
    """150000.00 → "150.000,00" (Danish thousands and decimal separators)."""
    return f"{Decimal(value).quantize(CENT):,.2f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def render_html(doc: SettlementDocument) -> str:
    """The human-readable document (*faktura* / *kreditnota*) in Danish, case numbers only."""
    return render(HTML_TEMPLATE, doc=doc, kr=danish_amount)
