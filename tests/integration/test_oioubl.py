"""Settlement documents as OIOUBL 2.1, checked against the OASIS UBL 2.1 schemas (agreement §8).

The schemas are read from ``../shared/schemas/ubl-2.1`` (see its README); schema tests skip
where that folder is absent. The Danish essentials (EAN endpoints with schemeID GLN, DKK,
payment due date, case numbers as order references, OIOUBL customisation) are checked
explicitly with XPath, because the UBL schema alone does not require any of them.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from lxml import etree

from genop.config import Agreement, load_agreement
from genop.errors import GenopError
from genop.settlement.oioubl import (DEFAULT_SCHEMAS_DIR, DocumentLine, Party, SettlementDocument, render_html, to_xml,
                          validate_ubl)
from genop.settlement.rules import aconto_split

needs_schemas = pytest.mark.skipif(
    not (DEFAULT_SCHEMAS_DIR / "maindoc").is_dir(),
    reason=f"UBL 2.1 schemas not found at {DEFAULT_SCHEMAS_DIR} (../shared/schemas); schema validation skipped",
)

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
TARNBY_EAN = "5798009884381"
DRAGOR_EAN = "5798009933423"
ISSUED = date(2026, 4, 1)
CASES = ("2026-0001", "2026-0002", "2026-0003")
CPR_LIKE = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    return load_agreement()


def municipality(agreement: Agreement, key: str) -> Party:
    party = agreement.party(key)
    return Party(name=party.name, ean=party.ean, street=None, city=None, postcode=None)


def copenhagen(agreement: Agreement) -> Party:
    return Party(name=agreement.party("copenhagen").name, ean=None, street="Edith Rodes Vej 4, Bygning V",
                 city="København N", postcode="2200", contact_email="genoptraeningkbh@suf.kk.dk")


def course(n: int, case_number: str, amount: str) -> DocumentLine:
    return DocumentLine(line_id=str(n), description=f"Afsluttet genoptræningsforløb, sag {case_number}",
                        quantity=Decimal("1"), unit_code="EA", unit_price=Decimal(amount),
                        amount=Decimal(amount), case_number=case_number)


def tarnby_invoice(agreement: Agreement, amounts: tuple[str, ...] = ("64000.00", "85500.00", "27620.00"),
                   **changes: object) -> SettlementDocument:
    lines = tuple(course(i, case, amount)
                  for i, (case, amount) in enumerate(zip(CASES, amounts, strict=False), start=1))
    total = sum((line.amount for line in lines), Decimal(0))
    fields: dict[str, object] = dict(
        kind="Invoice", number="KK-2026-03-185", issue_date=ISSUED,
        due_date=ISSUED + timedelta(days=agreement.deadlines.payment_term_days),
        seller=copenhagen(agreement), buyer=municipality(agreement, "tarnby"), lines=lines,
        prepaid=min(aconto_split(agreement)["tarnby"], total),
        note="Afregning af afsluttede forløb, marts 2026", order_references=CASES,
    )
    fields.update(changes)
    return SettlementDocument(**fields)  # type: ignore[arg-type]


def dragor_credit_note(agreement: Agreement) -> SettlementDocument:
    refund = DocumentLine(line_id="1", description="Tilbagebetaling af for meget betalt a conto 2026",
                          quantity=Decimal("1"), unit_code="EA", unit_price=Decimal("212500.00"),
                          amount=Decimal("212500.00"), case_number=None)
    return SettlementDocument(kind="CreditNote", number="KK-2027-01-155-K", issue_date=date(2027, 1, 15),
                              due_date=date(2027, 2, 14), seller=copenhagen(agreement),
                              buyer=municipality(agreement, "dragor"), lines=(refund,),
                              billing_reference="KK-2026-12-155")


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path} found {len(found)} times"
    return found[0] if isinstance(found[0], str) else found[0].text


def ubl_error(xml: bytes, kind: str) -> GenopError:
    with pytest.raises(GenopError) as caught:
        validate_ubl(xml, kind)
    return caught.value


# --- valid documents ---------------------------------------------------------------------


@needs_schemas
def test_tarnby_invoice_for_three_courses_offsets_the_aconto_and_validates(agreement: Agreement) -> None:
    doc = tarnby_invoice(agreement)
    xml = to_xml(doc)
    validate_ubl(xml, "Invoice")

    root = parse(xml)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert len(root.xpath("/inv:Invoice/cac:InvoiceLine", namespaces=NS)) == 3
    totals = "/inv:Invoice/cac:LegalMonetaryTotal/cbc:"
    assert text(root, totals + "LineExtensionAmount") == "177120.00"
    assert text(root, totals + "PrepaidAmount") == "150000.00"
    assert text(root, "/inv:Invoice/cac:PrepaidPayment/cbc:PaidAmount") == "150000.00"  # OIOUBL F-INV131
    assert text(root, totals + "PayableAmount") == "27120.00"
    assert doc.payable == doc.line_total - doc.prepaid == Decimal("27120.00")


@needs_schemas
def test_settlement_below_the_aconto_is_a_document_with_nothing_to_pay(agreement: Agreement) -> None:
    doc = tarnby_invoice(agreement, amounts=("40000.00", "35000.00", "45000.00"))
    xml = to_xml(doc)
    validate_ubl(xml, "Invoice")

    root = parse(xml)
    assert text(root, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PrepaidAmount") == "120000.00"
    assert text(root, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount") == "0.00"


@needs_schemas
def test_dragor_credit_note_validates_against_the_credit_note_schema(agreement: Agreement) -> None:
    xml = to_xml(dragor_credit_note(agreement))
    validate_ubl(xml, "CreditNote")

    root = parse(xml)
    assert root.tag == f"{{{NS['cn']}}}CreditNote"
    assert text(root, "/cn:CreditNote/cac:AccountingCustomerParty/cac:Party/cbc:EndpointID") == DRAGOR_EAN
    assert text(root, "/cn:CreditNote/cac:CreditNoteLine/cbc:CreditedQuantity/@unitCode") == "EA"
    assert text(root, "/cn:CreditNote/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == "KK-2026-12-155"
    assert text(root, "/cn:CreditNote/cac:LegalMonetaryTotal/cbc:PayableAmount") == "212500.00"
    assert not root.xpath("//cbc:InvoiceTypeCode | //cac:InvoiceLine", namespaces=NS)
    assert ubl_error(xml, "Invoice").code == "ubl_invalid"


@needs_schemas
def test_monthly_aconto_invoice_without_cases_validates(agreement: Agreement) -> None:
    aconto = aconto_split(agreement)["dragor"]
    line = DocumentLine(line_id="1", description="A conto for april 2026", quantity=Decimal("1"), unit_code="EA",
                        unit_price=aconto, amount=aconto, case_number=None)
    doc = SettlementDocument(kind="Invoice", number="KK-AC-2026-04-155", issue_date=ISSUED,
                             due_date=ISSUED, seller=copenhagen(agreement), buyer=municipality(agreement, "dragor"),
                             lines=(line,))
    xml = to_xml(doc)
    validate_ubl(xml, "Invoice")

    root = parse(xml)
    assert not root.xpath("//cac:OrderReference | //cac:OrderLineReference", namespaces=NS)
    assert not root.xpath("//cbc:PrepaidAmount | //cac:PrepaidPayment", namespaces=NS)  # OIOUBL: never 0.00
    assert text(root, "/inv:Invoice/cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:ID") == doc.number
    assert text(root, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount") == "50000.00"


def test_case_numbers_default_to_the_lines(agreement: Agreement) -> None:
    root = parse(to_xml(tarnby_invoice(agreement, order_references=())))
    assert text(root, "/inv:Invoice/cac:OrderReference/cbc:ID") == CASES[0]
    expected = "Afregning af afsluttede forløb, marts 2026\nSagsnumre: " + ", ".join(CASES)
    assert text(root, "/inv:Invoice/cbc:Note") == expected


# --- the Danish essentials, explicitly ---------------------------------------------------


def test_invoice_carries_the_oioubl_essentials(agreement: Agreement) -> None:
    doc = tarnby_invoice(agreement)
    root = parse(to_xml(doc))
    inv = "/inv:Invoice/"

    assert text(root, inv + "cbc:UBLVersionID") == "2.1"
    assert text(root, inv + "cbc:CustomizationID") == "OIOUBL-2.1"
    assert text(root, inv + "cbc:ProfileID") == "urn:www.nesubl.eu:profiles:profile5:ver2.0"
    assert text(root, inv + "cbc:ProfileID/@schemeID") == "urn:oioubl:id:profileid-1.2"
    assert text(root, inv + "cbc:ProfileID/@schemeAgencyID") == "320"
    assert text(root, inv + "cbc:InvoiceTypeCode") == "380"
    assert text(root, inv + "cbc:InvoiceTypeCode/@listID") == "urn:oioubl:codelist:invoicetypecode-1.1"
    assert text(root, inv + "cbc:DocumentCurrencyCode") == "DKK"

    buyer = inv + "cac:AccountingCustomerParty/cac:Party/"
    assert text(root, buyer + "cbc:EndpointID") == TARNBY_EAN
    assert text(root, buyer + "cbc:EndpointID/@schemeID") == "GLN"
    assert text(root, buyer + "cac:Contact/cbc:ID") == CASES[0]

    assert text(root, inv + "cac:PaymentMeans/cbc:PaymentDueDate") == "2026-05-01"  # 30 days, agreement §8
    assert text(root, inv + "cbc:DueDate") == "2026-05-01"

    assert text(root, inv + "cac:OrderReference/cbc:ID") == CASES[0]
    line_cases = root.xpath(inv + "cac:InvoiceLine/cac:OrderLineReference/cbc:LineID/text()", namespaces=NS)
    assert tuple(line_cases) == CASES
    assert text(root, inv + "cbc:Note").endswith("Sagsnumre: " + ", ".join(CASES))

    currencies = set(root.xpath("//@currencyID", namespaces=NS))
    assert currencies == {"DKK"}
    for amount in root.xpath("//*[@currencyID]/text()", namespaces=NS):
        assert re.fullmatch(r"\d+\.\d{2}", amount), amount


def test_vat_is_zero_rated_and_totals_follow_oioubl(agreement: Agreement) -> None:
    """OIOUBL's TaxExclusiveAmount is the VAT amount (schematron F-INV127), here 0.00."""
    root = parse(to_xml(tarnby_invoice(agreement)))
    totals = "/inv:Invoice/cac:LegalMonetaryTotal/cbc:"
    header_tax = "/inv:Invoice/cac:TaxTotal/"

    assert text(root, header_tax + "cbc:TaxAmount") == "0.00"
    assert text(root, header_tax + "cac:TaxSubtotal/cbc:TaxableAmount") == "177120.00"
    assert text(root, header_tax + "cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == "ZeroRated"
    assert text(root, header_tax + "cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == "0.00"
    assert text(root, header_tax + "cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID") == "63"
    assert len(root.xpath("/inv:Invoice/cac:InvoiceLine/cac:TaxTotal", namespaces=NS)) == 3
    assert text(root, totals + "TaxExclusiveAmount") == "0.00"
    assert text(root, totals + "TaxInclusiveAmount") == "177120.00"


def test_seller_with_an_ean_is_addressed_by_gln_too(agreement: Agreement) -> None:
    seller = Party(name="Københavns Kommune", ean="5790000000005", street=None, city=None, postcode=None,
                   cvr="64942212")
    root = parse(to_xml(tarnby_invoice(agreement, seller=seller)))
    party = "/inv:Invoice/cac:AccountingSupplierParty/cac:Party/"

    assert text(root, party + "cbc:EndpointID") == "5790000000005"
    assert text(root, party + "cbc:EndpointID/@schemeID") == "GLN"
    assert text(root, party + "cac:PartyLegalEntity/cbc:CompanyID") == "DK64942212"


def test_the_same_document_gives_the_same_xml(agreement: Agreement) -> None:
    """Re-running a settlement must not produce a different document (stable UUID, no clock)."""
    assert to_xml(tarnby_invoice(agreement)) == to_xml(tarnby_invoice(agreement))


# --- validation can fail -----------------------------------------------------------------


def without_document_id(xml: bytes) -> bytes:
    root = parse(xml)
    root.remove(root.find("cbc:ID", NS))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def issue_date_first(xml: bytes) -> bytes:
    root = parse(xml)
    issue_date = root.find("cbc:IssueDate", NS)
    root.remove(issue_date)
    root.find("cbc:ID", NS).addprevious(issue_date)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@needs_schemas
@pytest.mark.parametrize("break_it", [without_document_id, issue_date_first], ids=["no-cbc-ID", "out-of-order"])
def test_a_broken_invoice_fails_validation(agreement: Agreement, break_it) -> None:
    error = ubl_error(break_it(to_xml(tarnby_invoice(agreement))), "Invoice")
    assert error.code == "ubl_invalid"
    assert "Expected is one of ( cbc:ProfileExecutionID, cbc:ID )" in error.message


@needs_schemas
def test_malformed_xml_fails_validation() -> None:
    assert ubl_error(b"<Invoice><unclosed></Invoice>", "Invoice").code == "ubl_invalid"


def test_missing_schemas_are_reported(agreement: Agreement, tmp_path) -> None:
    with pytest.raises(GenopError) as caught:
        validate_ubl(to_xml(tarnby_invoice(agreement)), "Invoice", schemas_dir=tmp_path)
    assert caught.value.code == "ubl_schemas_missing"


@pytest.mark.parametrize("changes, problem", [
    ({"due_date": None}, "due date"),
    ({"prepaid": Decimal("200000.00")}, "prepaid"),
    ({"prepaid": Decimal("-1.00")}, "prepaid"),
    ({"buyer": Party(name="Tårnby Kommune", ean=None, street=None, city=None, postcode=None)}, "EAN"),
    ({"lines": ()}, "at least one line"),
    ({"lines": (DocumentLine("1", "Forløb", Decimal("2"), "EA", Decimal("640.00"), Decimal("640.00"), "X"),)},
     "2 x 640.00"),
])
def test_an_inconsistent_document_is_refused(agreement: Agreement, changes: dict, problem: str) -> None:
    with pytest.raises(GenopError) as caught:
        tarnby_invoice(agreement, **changes)
    assert caught.value.code == "invalid_document"
    assert problem in caught.value.message


# --- human-readable rendering ------------------------------------------------------------


def test_invoice_html_shows_danish_totals_and_case_numbers_only(agreement: Agreement) -> None:
    html = render_html(tarnby_invoice(agreement))

    assert "Faktura nr. KK-2026-03-185" in html
    for label, amount in (("I alt", "177.120,00"), ("Forudbetalt (a conto)", "150.000,00"),
                          ("Til betaling", "27.120,00")):
        assert re.search(re.escape(label) + r".*?" + re.escape(amount), html, re.S), label
    assert "Betalingsfrist: 1. maj 2026" in html
    assert all(case in html for case in CASES)
    assert f"EAN {TARNBY_EAN}" in html
    assert not CPR_LIKE.search(html)


def test_credit_note_html_is_a_kreditnota(agreement: Agreement) -> None:
    html = render_html(dragor_credit_note(agreement))

    assert "Kreditnota nr. KK-2027-01-155-K" in html
    assert "212.500,00" in html
    assert f"EAN {DRAGOR_EAN}" in html
    assert not CPR_LIKE.search(html)
